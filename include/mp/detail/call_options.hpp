// mp/detail/call_options.hpp - the trailing arguments of the map family:
// map(f, range[, chunksize][, options...]), the options being
// mp::progress(...) and mp::time_limit(...) in any order, each at most once.
// Also the checks that keep a per-call option from being taken for a
// task's argument.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <mp/detail/machine_local.hpp>
#include <mp/detail/progress_tracker.hpp>
#include <mp/detail/syscall.hpp>
#include <mp/detail/protocol.hpp>
#include <mp/progress.hpp>
#include <mp/time_limit.hpp>

namespace mp::detail {

template <class T>
concept call_option =
    std::same_as<std::remove_cvref_t<T>, TimeLimit> || std::same_as<std::remove_cvref_t<T>, Progress>;

template <class T>
concept chunksize_arg = std::integral<std::remove_cvref_t<T>> && !std::same_as<std::remove_cvref_t<T>, bool>;

template <class... Opts>
struct options_ok : std::true_type {};
template <class First, class... Rest>
struct options_ok<First, Rest...>
    : std::bool_constant<(chunksize_arg<First> || call_option<First>) && (call_option<Rest> && ...)> {};

/// What may follow the range of a map-family call.
template <class... Opts>
concept map_options = options_ok<Opts...>::value;

template <class Opt, class... Opts>
inline constexpr std::size_t count_of = (std::size_t{0} + ... + std::same_as<std::remove_cvref_t<Opts>, Opt>);

/// Whether the options hold a per-call time limit.
template <class... Opts>
inline constexpr bool has_time_limit = count_of<TimeLimit, Opts...> != 0;

/// The parsed trailing arguments.
struct CallOptions {
  std::size_t chunksize = 0;    ///< 0: the default
  Clock::duration time_limit{}; ///< 0: none
  std::optional<Progress> progress;

  /// The tracker for a call of `total` items (0: unknown), sampled by
  /// `ticker`; null without mp::progress (or a bar with no terminal).
  [[nodiscard]] std::shared_ptr<ProgressTracker> tracker(std::size_t total, ProgressTicker& ticker) const {
    auto t = progress ? ProgressTracker::make(*progress, total) : nullptr;
    if (t) ticker.add(t);
    return t;
  }
};

/// Refuses a time limit on a backend that cannot enforce it (MpiPool,
/// ThreadPool).
template <class Backend, class... Opts>
constexpr void check_time_limit_supported() {
  if constexpr (has_time_limit<Opts...>) {
    static_assert(requires { Backend::per_call_time_limits; },
                  "mp::time_limit: this pool (mp::MpiPool or mp::ThreadPool) cannot stop a running task, so "
                  "it refuses a per-call time limit; use mp::Pool, or wait with get(timeout) and cancel().");
  }
}

/// Parses map_options for a pool over Backend. Throws std::invalid_argument
/// for a negative chunksize.
template <class Backend, class... Opts>
CallOptions parse_options(const Opts&... opts) {
  check_time_limit_supported<Backend, Opts...>();
  static_assert(count_of<TimeLimit, Opts...> <= 1 && count_of<Progress, Opts...> <= 1,
                "mp::Pool map-family call: give mp::time_limit(...) and mp::progress(...) at most once each.");
  CallOptions o;
  [[maybe_unused]] auto one = [&](const auto& x) {
    using X = std::remove_cvref_t<decltype(x)>;
    if constexpr (std::same_as<X, TimeLimit>) {
      o.time_limit = x.duration;
    } else if constexpr (std::same_as<X, Progress>) {
      o.progress = x;
    } else {
      if constexpr (std::is_signed_v<X>) {
        if (x < 0) throw std::invalid_argument("mp::Pool: chunksize must not be negative (0 means the default)");
      }
      o.chunksize = static_cast<std::size_t>(x);
    }
  };
  (one(opts), ...);
  return o;
}

/// Refuses a per-call option among a task's arguments (apply/apply_async).
template <class... Args>
constexpr void check_no_call_option() {
  static_assert(count_of<TimeLimit, Args...> == 0,
                "mp::Pool::apply / apply_async: an mp::TimeLimit among f's arguments would be passed to f; "
                "give it first, before f: pool.apply_async(mp::time_limit(2s), f, args...).");
  static_assert(count_of<Progress, Args...> == 0,
                "mp::Pool::apply / apply_async: mp::progress(...) reports on map-family calls only; "
                "remove it, or use pool.map(f, range, mp::progress()).");
}

/// The checks of apply/apply_async on f and its arguments.
template <class Backend, class Fn, class... Args>
constexpr void check_apply() {
  check_no_call_option<Args...>();
  check_callable<Fn>();
  check_params<Fn>();
  check_reach<Backend, Fn, Args...>();
}

/// What the pool's ProgressTicker samples: the items finished inside a
/// sink's running chunks, where the backend can tell (else 0).
template <class Backend>
auto running_items_of(const Backend& b) {
  return [&b](const Sink* s) -> std::size_t {
    if constexpr (requires { b.running_items(s); }) {
      return b.running_items(s);
    } else {
      return 0;
    }
  };
}

/// The tuples of the ranges' elements, up to the shortest range (the
/// zipped map(f, a, b, ...)).
template <class... Rg>
auto zip_items(Rg&... rgs) {
  std::vector<std::tuple<std::ranges::range_value_t<Rg>...>> out;
  auto its = std::tuple(std::ranges::begin(rgs)...);
  const auto ends = std::tuple(std::ranges::end(rgs)...);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    while (((std::get<I>(its) != std::get<I>(ends)) && ...)) {
      out.emplace_back(*std::get<I>(its)...);
      (++std::get<I>(its), ...);
    }
  }(std::index_sequence_for<Rg...>{});
  return out;
}

}  // namespace mp::detail
