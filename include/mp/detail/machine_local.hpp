// mp/detail/machine_local.hpp - which sendable values name memory of this
// machine, so that a backend whose workers share none (MpiBackend) refuses
// them at compile time.
//
// Two kinds of value are sent as a name for memory rather than as data:
// mp::inherited(...) (its captures' addresses, valid in processes forked
// after it was made) and the shared-memory primitives (mp::Value, mp::Array,
// mp::Lock, ...: the identity of their segment). Both are looked for in the
// callable, in what an mp::partial binds, in the arguments, and in the
// elements of tuples, pairs, arrays, vectors and optionals. A field of a
// user's aggregate is not looked into: there, a segment that a worker rank
// does not have fails at decoding with std::logic_error, and an address
// cannot be put in an aggregate at all.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <mp/detail/handle_access.hpp>
#include <mp/detail/sendable.hpp>

namespace mp::detail {

template <class T>
struct MachineLocal : std::bool_constant<is_inherited<T> || shared_handle<T>> {};

template <class... Ts>
inline constexpr bool any_machine_local = (MachineLocal<std::remove_cvref_t<Ts>>::value || ...);

template <class F, class... Bound>
struct MachineLocal<mp::Partial<F, Bound...>> : std::bool_constant<any_machine_local<F, Bound...>> {};
template <class... Ts>
struct MachineLocal<std::tuple<Ts...>> : std::bool_constant<any_machine_local<Ts...>> {};
template <class A, class B>
struct MachineLocal<std::pair<A, B>> : std::bool_constant<any_machine_local<A, B>> {};
template <class T, std::size_t N>
struct MachineLocal<std::array<T, N>> : MachineLocal<T> {};
template <class T, class A>
struct MachineLocal<std::vector<T, A>> : MachineLocal<T> {};
template <class T>
struct MachineLocal<std::optional<T>> : MachineLocal<T> {};

/// Compile-time check that a backend can carry the callable F and values
/// Ts: always true for a backend whose workers share this machine's memory.
template <class Backend, class F, class... Ts>
constexpr void check_reach() {
  static_assert(Backend::shares_memory || !any_machine_local<F, Ts...>,
                "mp::MpiPool cannot send mp::inherited(...) or a shared-memory object (mp::Value, mp::Array, "
                "mp::Lock, ...): they name memory on rank 0's machine, which other ranks do not have. Send the "
                "data itself: pass the values as task arguments or bind them with mp::partial.");
}

}  // namespace mp::detail
