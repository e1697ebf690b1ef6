// tests/async_result_alone.cpp - built into test_async_result: the public
// future's header alone brings in neither the codec nor the message format.
// Each name below is declared by one of those headers (mp::codec and
// mp::detail::Reader by <mp/codec.hpp>, mp::detail::ResultStatus and
// mp::detail::ResultOut by <mp/detail/protocol.hpp>); declaring it again
// here as a variable fails to compile as soon as async_result.hpp includes
// one of them, directly or not.
#include <mp/async_result.hpp>

namespace mp {
[[maybe_unused]] static constexpr int codec = 0;
}  // namespace mp

namespace mp::detail {
[[maybe_unused]] static constexpr int Reader = 0;
[[maybe_unused]] static constexpr int ResultStatus = 0;
[[maybe_unused]] static constexpr int ResultOut = 0;
}  // namespace mp::detail
