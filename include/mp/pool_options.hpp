// mp/pool_options.hpp - mp::PoolOptions, how to build a pool, and
// mp::initializer, a task each worker runs before its first one.
//
//   mp::PoolOptions o;
//   o.processes = 4;
//   o.maxtasksperchild = 100;
//   o.initializer = mp::initializer(open_db, "rows.db");
//   mp::Pool pool(o);
//
// The same options build mp::Pool, mp::ThreadPool and mp::MpiPool; a field
// a pool cannot honour fails its constructor with std::invalid_argument.
#pragma once

#include <chrono>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include <mp/detail/protocol.hpp>
#include <mp/detail/sendable.hpp>
#include <mp/detail/signature.hpp>

namespace mp {

/// A task run once in each worker before its first task; make one with
/// mp::initializer(f, args...).
struct Initializer {
  std::vector<std::byte> message;  ///< an apply task message; empty: none
};

/// f(args...) as a pool initializer. f and args must be sendable (as for
/// apply). Throws what encoding throws (std::invalid_argument).
template <class F, class... Args>
Initializer initializer(F&& f, Args&&... args) {
  using Fn = std::decay_t<F>;
  detail::check_callable<Fn>();
  detail::check_params<Fn>();
  Initializer init;
  const Fn fn(std::forward<F>(f));
  detail::build_apply_as(fn, detail::wire_args_t<Fn, Args...>{}, [&](std::size_t n, auto& enc) {
    init.message.resize(n);
    enc(init.message.data());
  }, args...);
  return init;
}

/// How to build a Pool. Every field has a usable default.
struct PoolOptions {
  /// Worker processes; 0 means max(1, round(cpu_count() * factor)).
  unsigned processes = 0;
  /// Workers per usable CPU when processes == 0. 1.5 by measurement (README:
  /// the row-counting map is flat across 1.0-2.0, a CPU-bound map was 13%
  /// faster at 1.5 than at 1.0 and within 6% of 2.0 with fewer processes).
  double factor = 1.5;
  /// Tasks (a map chunk counts as one) a worker runs before it is replaced;
  /// 0 = never.
  unsigned maxtasksperchild = 0;
  /// Run once in each worker before its first task.
  Initializer initializer{};
  /// Tasks queued at one worker at most, unless its tasks are short: then
  /// about 1 ms of its work (up to 8192 tasks). More wait in the parent.
  unsigned window = 64;
  /// A task (a map chunk counts as one) running longer than this has its
  /// worker killed and replaced; its future fails with mp::TaskTimeoutError.
  /// 0 = no limit. Checked every ~timeout/4 (at most 10 ms apart).
  std::chrono::milliseconds task_timeout{0};
  /// Times a task whose worker died is run again elsewhere before its future
  /// fails with mp::WorkerLostError. 0 (the default) = never: a task that
  /// kills its worker would kill the next one too. Costs a copy of each task
  /// message while it is in flight.
  unsigned retries = 0;
  /// Address-space cap (RLIMIT_AS, bytes) of each worker; 0 = none. A task
  /// allocating past it fails with std::bad_alloc, or, if what it calls
  /// aborts instead, with mp::WorkerLostError. Not usable under ASan (it
  /// reserves terabytes of address space).
  std::size_t memory_limit = 0;
  /// The largest encoded result a task may send back. Above it the task
  /// fails with std::length_error saying so (the worker sends no result);
  /// below it any size goes through (in parts when larger than the ring).
  std::size_t max_result_bytes = std::size_t{4} << 30;
};

}  // namespace mp
