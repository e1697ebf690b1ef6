// mp/pool.hpp - mp::Pool, Python's multiprocessing.Pool over forked workers.
//
//   mp::Pool pool;                                   // cpu_count() * factor workers
//   auto squares = pool.map(square, std::views::iota(0, 1000));
//   mp::AsyncResult<int> r = pool.apply_async(add, 1, 2);
//   for (int x : pool.imap(square, std::views::iota(0, 100'000'000))) ...
//
// Layers. basic_pool<Backend> is the API: it encodes tasks (a trampoline's
// FunctionId + the callable + the arguments, or a chunk of items; the
// messages are detail/protocol.hpp's), chunks maps, orders results, and
// hands out AsyncResult futures. The Backend only moves task messages to
// workers and result messages back (the seam and its contract:
// detail/backend.hpp). mp::Pool = basic_pool<detail::ForkBackend>.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <mp/async_result.hpp>
#include <mp/cpu_count.hpp>
#include <mp/detail/call_options.hpp>
#ifdef MP_SEPARATE_COMPILATION  // the engine is compiled once, in the file including <mp/src.hpp>
#include <mp/detail/compiled_backend.hpp>
#else
#include <mp/detail/fork_backend.hpp>
#endif
#include <mp/detail/machine_local.hpp>
#include <mp/detail/pids.hpp>
#include <mp/detail/pool_imap.hpp>
#include <mp/detail/pool_map.hpp>
#include <mp/errors.hpp>
#include <mp/partial.hpp>
#include <mp/pool_options.hpp>
#include <mp/time_limit.hpp>

namespace mp {

/// The pool, generic over how tasks reach workers (the Backend).
template <class Backend>
class basic_pool {
  static_assert(detail::Backend<Backend>,
                "mp::basic_pool<Backend>: this Backend does not meet the backend contract (the concept "
                "mp::detail::Backend in detail/backend.hpp): give it every member listed there, with those "
                "signatures; the failed requirement is named in the note below.");

public:
  /// cpu_count() workers (times PoolOptions{}.factor). Forks the spawner and
  /// the workers; throws std::system_error if it cannot.
  basic_pool() : basic_pool(PoolOptions{}) {}

  /// `processes` workers; throws std::invalid_argument unless processes >= 1.
  explicit basic_pool(int processes) : basic_pool(options_for(processes)) {}

  /// Workers as `opt` says. Throws std::invalid_argument for a factor <= 0,
  /// std::system_error when a process cannot be made.
  explicit basic_pool(const PoolOptions& opt) : backend_(backend_options(opt)) {}

  basic_pool(const basic_pool&) = delete;
  basic_pool& operator=(const basic_pool&) = delete;

  /// close() + join(): waits for every submitted task. Never throws.
  ~basic_pool() {
    try {
      backend_.close();
      backend_.join();
    } catch (...) {
      backend_.terminate();
    }
  }

  /// The number of worker processes. Never blocks.
  [[nodiscard]] unsigned size() const noexcept { return backend_.size(); }

  /// The worker processes' pids now, one per slot (0 while a slot's worker
  /// is being forked). A worker may die and be replaced at any time, so a
  /// pid read here may be gone already. Never blocks. Thread-safe.
  [[nodiscard]] std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (unsigned i = 0; i < size(); ++i) out.push_back(backend_.worker_pid(i));
    return out;
  }

  /// Runs f(args...) in a worker and returns its result. Blocks; rethrows the
  /// task's exception; throws std::logic_error on a closed pool. Thread-safe.
  template <class F, class... Args>
  auto apply(F&& f, Args&&... args) {
    return std::move(apply_async(std::forward<F>(f), std::forward<Args>(args)...)).get();
  }

  /// apply() with a time limit, as apply_async(limit, f, args...).
  template <class F, class... Args>
  auto apply(TimeLimit limit, F&& f, Args&&... args) {
    return std::move(apply_async(limit, std::forward<F>(f), std::forward<Args>(args)...)).get();
  }

  /// Submits f(args...) and returns its future at once (blocks only on the
  /// pool's lock). Each argument is first converted to f's parameter type
  /// when f has one signature ("hey" to std::string, a span to a vector).
  /// Throws std::logic_error on a closed pool. Thread-safe.
  template <class F, class... Args>
  auto apply_async(F&& f, Args&&... args) {
    return apply_limited(detail::Clock::duration::zero(), f, args...);
  }

  /// apply_async() whose task may run for `limit` at most, counted from when
  /// a worker begins it; past it the worker is killed (and replaced; other
  /// tasks go on) and the future fails with mp::TaskTimeoutError. The limit
  /// goes first: after f it would be f's argument (a compile error). mp::Pool
  /// only (MpiPool: a compile error). Throws as apply_async(). Thread-safe.
  template <class F, class... Args>
  auto apply_async(TimeLimit limit, F&& f, Args&&... args) {
    detail::check_time_limit_supported<Backend, TimeLimit>();
    return apply_limited(limit.duration, f, args...);
  }

  /// [f(x) for x in range], in order (void for a void f, after every item
  /// ran). Items convert to f's parameter type first. Blocks; the first
  /// exception in input order is rethrown after every chunk ended. chunksize
  /// 0: ceil(n / (4 * size())). Thread-safe.
  /// Options (any order, after the chunksize): mp::progress(...),
  /// mp::time_limit(d) (each chunk's limit; mp::Pool only).
  template <class F, std::ranges::input_range Rg, class... Opts>
    requires detail::map_options<Opts...>
  auto map(F&& f, Rg&& range, Opts&&... opts) {
    return std::move(map_async(std::forward<F>(f), std::forward<Rg>(range), opts...)).get();
  }

  /// map() returning a future of the whole vector at once.
  template <class F, std::ranges::input_range Rg, class... Opts>
    requires detail::map_options<Opts...>
  auto map_async(F&& f, Rg&& range, Opts&&... opts) {
    return map_impl<false>(std::forward<F>(f), std::forward<Rg>(range), detail::parse_options<Backend>(opts...));
  }

  /// Executor.map(f, a, b, ...): [f(x, y, ...) for x, y, ... in zip(a, b,
  /// ...)], stopping at the shortest range; the ranges are read at once.
  /// Elements convert to f's parameter types. Default chunksize. As map().
  template <class F, std::ranges::input_range A, std::ranges::input_range B, std::ranges::input_range... More>
  auto map(F&& f, A&& a, B&& b, More&&... more) {
    return std::move(map_async(std::forward<F>(f), a, b, more...)).get();
  }

  /// The zipped map() returning a future.
  template <class F, std::ranges::input_range A, std::ranges::input_range B, std::ranges::input_range... More>
  auto map_async(F&& f, A&& a, B&& b, More&&... more) {
    return map_impl<true>(std::forward<F>(f), detail::zip_items(a, b, more...), detail::CallOptions{});
  }

  /// [f(*x) for x in range]: each element (tuple, pair, array) unpacked into
  /// f's arguments. As map().
  template <class F, std::ranges::input_range Rg, class... Opts>
    requires detail::map_options<Opts...>
  auto starmap(F&& f, Rg&& range, Opts&&... opts) {
    return std::move(starmap_async(std::forward<F>(f), std::forward<Rg>(range), opts...)).get();
  }

  /// starmap() returning a future.
  template <class F, std::ranges::input_range Rg, class... Opts>
    requires detail::map_options<Opts...>
  auto starmap_async(F&& f, Rg&& range, Opts&&... opts) {
    return map_impl<true>(std::forward<F>(f), std::forward<Rg>(range), detail::parse_options<Backend>(opts...));
  }

  /// A lazy input range of f(x) in input order (f must return a value: for a
  /// void f use map). Reads the input only as
  /// results are consumed (a bounded number of chunks in flight); leaving
  /// the loop early abandons the rest. An lvalue range must outlive the
  /// result. Iterating rethrows a task's exception; the input's exception
  /// comes after the results of every item before it. Options as map().
  template <class F, std::ranges::input_range Rg, class... Opts>
    requires detail::map_options<Opts...>
  auto imap(F&& f, Rg&& range, Opts&&... opts) {
    return make_imap<true>(std::forward<F>(f), std::forward<Rg>(range), detail::parse_options<Backend>(opts...));
  }

  /// imap() in completion order.
  template <class F, std::ranges::input_range Rg, class... Opts>
    requires detail::map_options<Opts...>
  auto imap_unordered(F&& f, Rg&& range, Opts&&... opts) {
    return make_imap<false>(std::forward<F>(f), std::forward<Rg>(range), detail::parse_options<Backend>(opts...));
  }

  /// The lazy form of starmap (mpi4py.util.pool's istarmap): f(*x) for each
  /// tuple-like x, in input order. As imap().
  template <class F, std::ranges::input_range Rg, class... Opts>
    requires detail::map_options<Opts...>
  auto istarmap(F&& f, Rg&& range, Opts&&... opts) {
    return make_imap<true, true>(std::forward<F>(f), std::forward<Rg>(range), detail::parse_options<Backend>(opts...));
  }

  /// istarmap() in completion order.
  template <class F, std::ranges::input_range Rg, class... Opts>
    requires detail::map_options<Opts...>
  auto istarmap_unordered(F&& f, Rg&& range, Opts&&... opts) {
    return make_imap<false, true>(std::forward<F>(f), std::forward<Rg>(range), detail::parse_options<Backend>(opts...));
  }

  /// No more submissions (they throw std::logic_error); queued tasks still
  /// run. Never blocks. Thread-safe; may be called from a then() callback.
  void close() { backend_.close(); }

  /// Waits for every queued task and the workers' exit. Requires close() or
  /// terminate() first (std::logic_error otherwise). Blocks. From a then()
  /// callback it would wait for itself: std::logic_error.
  void join() { backend_.join(); }

  /// join() that waits at most d for the queued tasks; returns false when
  /// some are still outstanding then (the pool stays closed, join() may be
  /// called again). The workers' exit after the last task is not timed.
  /// Throws std::logic_error as join() does.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> d) {
    return backend_.join_until(detail::deadline_after(d));
  }

  /// Kills the workers now; unfinished tasks fail with mp::ClosedError.
  /// Blocks only while the workers are reaped. Thread-safe, idempotent; may
  /// be called from a then() callback.
  void terminate() { backend_.terminate(); }

  /// The backend (for tests and for backends with extra controls).
  Backend& backend() noexcept { return backend_; }

private:
  static PoolOptions options_for(int processes) {
    if (processes < 1) throw std::invalid_argument("mp::Pool: the number of processes must be at least 1");
    PoolOptions o;
    o.processes = static_cast<unsigned>(processes);
    return o;
  }

  static detail::BackendOptions backend_options(const PoolOptions& o) {
    if (!(o.factor > 0)) throw std::invalid_argument("mp::PoolOptions::factor must be positive");
    detail::BackendOptions b;
    b.processes = o.processes;  // 0 is resolved by the backend
    b.factor = o.factor;
    b.maxtasksperchild = o.maxtasksperchild;
    b.window = std::max(1u, o.window);
    b.initializer = o.initializer.message;
    if (o.task_timeout.count() < 0) throw std::invalid_argument("mp::PoolOptions::task_timeout must not be negative");
    b.task_timeout = o.task_timeout;
    b.retries = o.retries;
    b.memory_limit = o.memory_limit;
    b.max_result_bytes = o.max_result_bytes;
    return b;
  }

  /// Throws std::logic_error in any process but the one that made the pool
  /// (a task, or a child forked after the pool): its copy of the pool has
  /// none of the pool's threads, so a submission there could never finish.
  void check_owner() const {
    if (detail::self_pid() == owner_) return;
    throw std::logic_error("mp::Pool: this pool belongs to process " + std::to_string(owner_) + ", and process " +
                           std::to_string(detail::self_pid()) +
                           " (a task or another child of it) cannot submit to it; make a Pool inside the task "
                           "instead.");
  }

  /// Throws detail::PoolNotRunning (a std::logic_error) with the backend's
  /// reason once the pool takes no more tasks.
  void check_running();

  template <class F, class... Args>
  auto apply_limited(detail::Clock::duration limit, const F& f, const Args&... args) {
    using Fn = std::decay_t<F>;
    detail::check_apply<Backend, Fn, std::decay_t<Args>...>();
    const Fn& fn = f;
    return submit_apply(limit, fn, detail::wire_args_t<Fn, Args...>{}, args...);
  }

  template <class Fn, class... Ws, class... Args>
  auto submit_apply(detail::Clock::duration limit, const Fn& fn, detail::ParamList<Ws...> wire, const Args&... args) {
    check_owner();
    using R = std::invoke_result_t<Fn&, Ws&...>;
    if constexpr (!std::is_void_v<R>) detail::check_argument<std::remove_cvref_t<R>>();
    using T = std::conditional_t<std::is_void_v<R>, void, std::remove_cvref_t<R>>;
    auto st = std::make_shared<detail::ApplyState<T>>();
    st->set_time_limit(limit);
    detail::build_apply_as(fn, wire, [&](std::size_t n, auto& enc) { backend_.submit(n, enc, st, 0); }, args...);
    return AsyncResult<T>(std::move(st));
  }

  template <bool Star, class F, class Rg>
  auto map_impl(F&& f, Rg&& range, const detail::CallOptions& o) {
    using Fn = std::decay_t<F>;
    using T = std::ranges::range_value_t<Rg>;
    using W = detail::item_wire_t<Star, Fn, T>;  // T converted to f's parameter types
    detail::check_callable<Fn>();
    detail::check_params<Fn>();
    detail::check_reach<Backend, Fn, T>();
    detail::check_argument<W>();
    using R = std::remove_cvref_t<detail::item_result_t<Star, Fn, W>>;
    if constexpr (!std::is_void_v<R>) detail::check_argument<R>();
    if constexpr (std::is_same_v<W, T> && std::ranges::forward_range<Rg> && std::ranges::sized_range<Rg>) {
      return submit_chunks<Star, Fn, W, R>(f, std::ranges::begin(range),
                                           static_cast<std::size_t>(std::ranges::size(range)), o);
    } else {
      std::vector<W> items;  // like Python: an unsized iterable is read into a list first
      for (auto&& x : range) items.push_back(detail::to_wire<W>(std::forward<decltype(x)>(x)));
      return submit_chunks<Star, Fn, W, R>(f, items.begin(), items.size(), o);
    }
  }

  template <bool Star, class Fn, class T, class R, class It>
  AsyncResult<detail::map_result_t<R>> submit_chunks(const Fn& f, It first, std::size_t n,
                                                     const detail::CallOptions& o) {
    check_owner();
    const std::size_t cs =
        o.chunksize != 0 ? o.chunksize : detail::default_map_chunksize(n, detail::mean_item_bytes<T>(first, n), size());
    const std::size_t chunks = (n + cs - 1) / cs;
    auto progress = o.tracker(n, ticker_);
    auto st = std::make_shared<detail::MapState<R>>(n, cs, chunks, progress);
    st->set_time_limit(o.time_limit);
    if (progress) progress->watch(st.get());
    if (n == 0) {
      check_running();
      if (progress) progress->finish();
      if constexpr (std::is_void_v<R>) {
        st->set_value();
      } else {
        st->set_value({});
      }
      return AsyncResult<detail::map_result_t<R>>(std::move(st));
    }
    std::size_t start = 0;
    try {
      for (; start < n; start += cs) {
        const std::size_t count = std::min(cs, n - start);
        detail::build_chunk<Star, Fn, T>(f, first, count, [&](std::size_t bytes, auto& enc) {
          backend_.submit(bytes, enc, st, start);
        });
        std::ranges::advance(first, static_cast<std::iter_difference_t<It>>(count));
      }
    } catch (...) {
      if (start == 0) throw;  // nothing went out: nothing to wait for
      const auto e = std::current_exception();
      for (; start < n; start += cs) st->on_error(start, e);  // let the sent chunks finish
      std::rethrow_exception(e);
    }
    return AsyncResult<detail::map_result_t<R>>(std::move(st));
  }

  bool running() { return backend_.running(); }

  template <bool Ordered, bool Star = false, class F, class Rg>
  auto make_imap(F&& f, Rg&& range, const detail::CallOptions& o) {
    using Fn = std::decay_t<F>;
    using T = detail::item_wire_t<Star, Fn, std::ranges::range_value_t<Rg>>;
    detail::check_callable<Fn>();
    detail::check_params<Fn>();
    detail::check_reach<Backend, Fn, T>();
    detail::check_argument<T>();
    using R = std::remove_cvref_t<detail::item_result_t<Star, Fn, T>>;
    if constexpr (std::is_void_v<R>) {
      static_assert(detail::always_false<Fn>,
                    "mp::Pool::imap, imap_unordered, istarmap and istarmap_unordered yield f's results, and "
                    "this f returns void: use pool.map(f, range) or pool.starmap(f, range), which run every "
                    "item and rethrow the first error in input order.");
    } else {
      return make_imap_range<Ordered, Star, Fn, T>(std::forward<F>(f), std::forward<Rg>(range), o);
    }
  }

  template <bool Ordered, bool Star, class Fn, class T, class F, class Rg>
  auto make_imap_range(F&& f, Rg&& range, const detail::CallOptions& o) {
    detail::check_argument<std::remove_cvref_t<detail::item_result_t<Star, Fn, T>>>();
    check_owner();
    check_running();
    detail::ImapChunking chunking{o.chunksize};
    std::size_t total = 0;
    if constexpr (std::ranges::sized_range<Rg>) {
      total = static_cast<std::size_t>(std::ranges::size(range));
      chunking.cap = std::min(chunking.cap, detail::default_map_chunksize(total, 1, size()));
    }
    if constexpr (detail::Codec<T>::fixed != detail::variable_size)
      chunking.cap = std::min(chunking.cap, detail::items_within_budget(detail::Codec<T>::fixed));
    auto view = std::views::all(std::forward<Rg>(range));
    return detail::ImapRange<Backend, Fn, decltype(view), T, Star>(backend_, Fn(std::forward<F>(f)), std::move(view),
                                                                   chunking, Ordered, 4 * std::size_t{size()},
                                                                   o.tracker(total, ticker_), o.time_limit);
  }

  pid_t owner_ = detail::self_pid();  ///< the process that made the pool; set before backend_ forks
  Backend backend_;
  /// Samples mp::progress trackers; destroyed (joined) before backend_.
  detail::ProgressTicker ticker_{detail::running_items_of(backend_)};
};

// Out of the class, so that with MP_SEPARATE_COMPILATION it is compiled once,
// with Pool's other members, and not in every map.
template <class Backend>
void basic_pool<Backend>::check_running() {
  if (!backend_.running()) throw detail::PoolNotRunning(backend_.why_not_running());
}

/// The pool of forked worker processes.
#ifdef MP_SEPARATE_COMPILATION
using Pool = basic_pool<detail::CompiledForkBackend>;
// Pool's members that are not templates are compiled once, in <mp/src.hpp>.
extern template class basic_pool<detail::CompiledForkBackend>;
#else
using Pool = basic_pool<detail::ForkBackend>;
#endif

}  // namespace mp
