// mp/detail/task.hpp - what travels between the pool's parent and a worker,
// independent of the backend (fork today, MPI ranks later):
//
//   task message   = FunctionId of a trampoline (16 bytes) | trampoline payload
//     apply payload = encoded callable F | encoded args...
//     chunk payload = encoded callable F | u64 count | count encoded items
//   result message = u8 status | body
//     status ok     : encoded result (void: nothing; chunk: u64 count + items)
//     status error  : u64 item index in the chunk | error body (wire_error.hpp)
//
// A trampoline is a plain function instantiated for (F, Args...) and named by
// its load-address-independent FunctionId (function_id.hpp), so the worker
// needs nothing but the bytes: it resolves the id and jumps.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <mp/codec.hpp>
#include <mp/detail/signature.hpp>
#include <mp/detail/futex.hpp>
#include <mp/detail/item_counter.hpp>
#include <mp/detail/wire_error.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

/// A non-owning reference to a callable writing bytes at a pointer.
class EncodeRef {
public:
  template <class F>
  EncodeRef(F& f) noexcept  // NOLINT: implicit on purpose
      : obj_(&f), call_([](void* o, std::byte* p) { (*static_cast<F*>(o))(p); }) {}
  void operator()(std::byte* p) const { call_(obj_, p); }

private:
  void* obj_;
  void (*call_)(void*, std::byte*);
};

/// Where a worker writes the result of the task it runs (the backend's
/// result channel). write(n, enc): enc(p) writes exactly n bytes at p.
class ResultOut {
public:
  virtual void write(std::size_t n, EncodeRef enc) = 0;

protected:
  ~ResultOut() = default;
};

class Sink;

/// What a thread waiting for a result can do instead of sleeping: read the
/// backend's result channels itself (one thread at a time), so that a round
/// trip needs no wakeup of the result thread. Owned by the backend and
/// shared with its pending results, so it outlives both.
class WaitHelper {
public:
  virtual ~WaitHelper() = default;
  /// Delivers whatever results are there, if no other thread is reading
  /// them; returns whether it delivered any. Never blocks; any thread.
  virtual bool help() noexcept = 0;
  /// Cancels the tasks of sink s not begun yet (and, with `running`, the one
  /// running, by killing its worker); returns whether it cancelled any.
  virtual bool cancel(const Sink* s, bool running) noexcept {
    (void)s;
    (void)running;
    return false;
  }
  /// A waiter begins / ends its spin of help() calls (the backend's result
  /// thread stands back meanwhile). A waiter that leaves to sleep passes
  /// wake = true: the last one out wakes the result thread at once.
  void enter() noexcept { active_.fetch_add(1, std::memory_order_seq_cst); }
  void leave(bool wake) noexcept {
    if (active_.fetch_sub(1, std::memory_order_seq_cst) == 1 && wake) futex_wake_all(active_);
  }

protected:
  std::atomic<std::uint32_t> active_{0};
};

/// The parent-side receiver of one task's result. Called on the backend's
/// result thread (or on terminate, or in a thread waiting for a result),
/// exactly once per submitted task.
class Sink {
public:
  virtual ~Sink() = default;
  /// The result message of the task submitted with this `index`.
  virtual void on_result(std::size_t index, std::span<const std::byte> msg) noexcept = 0;
  /// The task will never produce a result (worker lost, pool terminated).
  virtual void on_error(std::size_t index, std::exception_ptr e) noexcept = 0;
  /// Whether completing this sink runs user callbacks (which must run on the
  /// result thread, so a helping waiter leaves it to that thread).
  [[nodiscard]] virtual bool has_callbacks() const noexcept { return false; }
  /// The backend's helper, for waiters of this sink (set at submit).
  virtual void use_helper(const std::shared_ptr<WaitHelper>&) noexcept {}
  /// The per-call time limit of each of this sink's tasks (0: none). Set
  /// before the first submit; a backend that kills a task past it says so.
  void set_time_limit(Clock::duration d) noexcept { time_limit_ = d; }
  [[nodiscard]] Clock::duration time_limit() const noexcept { return time_limit_; }

private:
  Clock::duration time_limit_{0};
};

using Trampoline = void (*)(Reader& in, ResultOut& out);

enum class ResultStatus : std::uint8_t { ok = 0, error = 1 };

// ---- exceptions ------------------------------------------------------------

/// Writes an error result for the exception being handled (call in catch).
inline void write_current_error(ResultOut& out, std::uint64_t index) noexcept {
  try {
    const WireError w = current_wire_error();
    const std::size_t n = 1 + encoded_size(index, w);
    auto enc = [&](std::byte* p) {
      *p = std::byte{static_cast<std::uint8_t>(ResultStatus::error)};
      encode_to(p + 1, index, w);
    };
    out.write(n, enc);
  } catch (...) {
    std::abort();  // cannot even report: the parent would wait for ever otherwise
  }
}

/// Reads a result message's status; on error throws the task's exception
/// (as a std::exception_ptr in `err`, with the failing item index).
inline bool read_status(Reader& r, std::exception_ptr& err, std::uint64_t& index) {
  const auto st = r.read_raw<std::uint8_t>();
  if (st == static_cast<std::uint8_t>(ResultStatus::ok)) return true;
  if (st != static_cast<std::uint8_t>(ResultStatus::error)) r.fail("a result message has a bad status byte");
  index = r.read<std::uint64_t>();
  err = make_exception(read_wire_error(r));
  return false;
}

// ---- what can be sent ------------------------------------------------------

/// True when F can travel to a worker.
template <class F>
concept SendableCallable = Sendable<std::decay_t<F>>;

/// Whether F is an mp::inherited(...) wrapper: its state is sent as raw
/// bytes, valid only in processes forked after it was made. A backend whose
/// workers are not forked from the caller static_asserts !is_inherited<F>.
template <class F>
inline constexpr bool is_inherited = false;
template <class F>
inline constexpr bool is_inherited<mp::Inherited<F>> = true;

template <class F>
inline constexpr bool is_partial = false;
template <class F, class... Bound>
inline constexpr bool is_partial<mp::Partial<F, Bound...>> = true;

/// A lambda with no lambda-capture (C++20: exactly the default-constructible
/// closures): there is no state; the worker default-constructs it.
template <class F>
concept captureless = std::is_empty_v<F> && std::is_default_constructible_v<F> && std::is_trivially_copyable_v<F>;

/// A type whose author declared what it sends (serialize, save/load, codec).
template <class F>
concept declared_codec = codec_specialized<F> || member_serialize<F> || member_save_load<F> || free_serialize<F>;

/// Compile-time check that F may be sent to a worker; the message shows the
/// rewrite, and F shows in the instantiation note.
template <class F>
constexpr void check_callable() {
  using D = std::remove_cvref_t<F>;
  if constexpr (function_pointer<D> || captureless<D> || declared_codec<D> || is_partial<D> || is_inherited<D>) {
  } else if constexpr (std::is_empty_v<D> && std::is_trivially_copyable_v<D> && !std::is_aggregate_v<D>) {
    static_assert(always_false<D>,
                  "mp::Pool cannot send this lambda: it captures nothing but has a capture-default ([&] or [=]), "
                  "which makes it a closure that mp cannot recreate in the worker. Drop the capture-default: "
                  "write [](int x) { ... } instead of [&](int x) { ... }.");
  } else if constexpr (!std::is_aggregate_v<D>) {
    static_assert(always_false<D>,
                  "mp::Pool cannot send a lambda with captures (nor a non-aggregate class without a serialize "
                  "member): mp cannot see what it holds, and a captured reference, pointer or this would reach the "
                  "worker as an address that means nothing there. Bind the captured values with mp::partial: "
                  "write pool.map(mp::partial(f, s), xs) where f takes the captured value s as its first "
                  "parameter (or mp::partial(&Class::method, object)); pass mp::Value/mp::Array handles as "
                  "arguments; or, for objects made before the pool and unchanged since, wrap the lambda in "
                  "mp::inherited(...).");
  }
  static_assert(SendableCallable<D>,
                "mp::Pool cannot send this callable to a worker process: it is not a function pointer, a "
                "captureless lambda, an mp::partial, nor a function object that is an aggregate of sendable "
                "fields or has a serialize(Archive&) member or an mp::codec specialization.");
}

/// Compile-time check of F's parameter types (when they are known).
template <class F>
constexpr void check_params() {
  static_assert(!has_out_param<params_t<F>>,
                "mp::Pool cannot call a function with a non-const lvalue reference parameter (such as "
                "void f(int&)) in a worker: the worker writes to its own copy, which the caller never sees. "
                "Results come back through the return value: return what the function computes, take the "
                "parameter by value or const&, or write into an mp::Value/mp::Array passed as an argument.");
}

template <class T>
constexpr void check_argument() {
  static_assert(Sendable<T>,
                "mp::Pool cannot send this argument or result type between processes: it is not trivially "
                "copyable, not a supported standard container, and has no serialize(Archive&) member or "
                "mp::codec<T> specialization. Add one of those (see <mp/codec.hpp>).");
}

// ---- trampolines -------------------------------------------------------------

/// Encodes the result `r` (or nothing for void) as an ok message.
template <class R>
void write_ok(ResultOut& out, const R* r) {
  std::size_t n = 1;
  if constexpr (!std::is_void_v<R>) n += encoded_size(*r);
  auto enc = [&](std::byte* p) {
    *p = std::byte{0};
    if constexpr (!std::is_void_v<R>) encode_to(p + 1, *r);
  };
  out.write(n, enc);
}

/// apply: decode F and the arguments, call, send the result or the error.
template <class F, class... Args>
void apply_trampoline(Reader& in, ResultOut& out) {
  using R = std::invoke_result_t<F&, Args&...>;
  try {
    F f = in.read<F>();
    std::tuple<Args...> args{in.read<Args>()...};
    if constexpr (std::is_void_v<R>) {
      std::apply(f, args);
      write_ok<void>(out, nullptr);
    } else {
      const R r = std::apply(f, args);
      write_ok<R>(out, &r);
    }
  } catch (...) {
    write_current_error(out, 0);
  }
}

/// Calls f on one item: the item itself (map) or its unpacked fields (starmap).
template <bool Star, class F, class T>
decltype(auto) call_item(F& f, T& item) {
  if constexpr (Star) {
    return std::apply(f, item);
  } else {
    return std::invoke(f, item);
  }
}

template <bool Star, class F, class T>
using item_result_t = decltype(call_item<Star>(std::declval<F&>(), std::declval<T&>()));

/// Writes a chunk's ok message: the results, or for void only their count.
template <class R>
void write_chunk_ok(ResultOut& out, const R& results) {
  auto enc = [&](std::byte* p) {
    *p = std::byte{0};
    encode_to(p + 1, results);
  };
  out.write(1 + encoded_size(results), enc);
}

/// map/starmap chunk: decode F and `count` items, call f on each in order,
/// send all results in one message (a void f: their count); the first
/// throwing item stops the chunk and its index travels with the error.
template <bool Star, class F, class T>
void chunk_trampoline(Reader& in, ResultOut& out) {
  using R = std::remove_cvref_t<item_result_t<Star, F, T>>;
  std::uint64_t i = 0;
  try {
    F f = in.read<F>();
    const auto n = static_cast<std::size_t>(in.read<std::uint64_t>());
    if constexpr (std::is_void_v<R>) {
      for (; i < n; ++i) {
        T item = in.read<T>();
        call_item<Star>(f, item);
        note_items(i + 1);
      }
      write_chunk_ok(out, std::uint64_t{n});
    } else {
      std::vector<R> results;
      results.reserve(std::min<std::size_t>(n, in.remaining() + 1));
      for (; i < n; ++i) {
        T item = in.read<T>();
        results.push_back(call_item<Star>(f, item));
        note_items(i + 1);
      }
      write_chunk_ok(out, results);
    }
  } catch (...) {
    write_current_error(out, i);
  }
}

/// Runs one task message: resolves its trampoline and calls it. Everything
/// the task throws becomes an error result; a malformed message too.
inline void run_task(std::span<const std::byte> msg, ResultOut& out) {
  Reader in(msg);
  Trampoline t = nullptr;
  try {
    t = resolve_function_as<Trampoline>(in.read<FunctionId>());
    if (t == nullptr) throw DecodeError("mp: a task message names no function");
  } catch (...) {
    write_current_error(out, 0);
    return;
  }
  t(in, out);
}

}  // namespace mp::detail
