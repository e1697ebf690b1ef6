// mp/detail/protocol.hpp - the messages between the pool's parent and a
// worker, in both directions, the same for every backend (fork, MPI): how
// each is encoded and decoded, and the worker side that runs a task
// message. A backend moves these bytes and never looks inside them.
//
// Task message (parent -> worker): the FunctionId of a trampoline, then
// the trampoline's payload.
//
//   apply  | FunctionId (16) | callable F | arg 1 | ... | arg n |
//   chunk  | FunctionId (16) | callable F | u64 count | item 1 | ... | item count |
//
// Result message (worker -> parent): a status byte, then its body.
//
//   ok, apply      | 0 | R (nothing for void) |
//   ok, chunk      | 0 | u64 ns | u64 count | R 1 | ... | R count |   (void R: no R)
//   error          | 1 | u64 item index in the chunk | error body (wire_error.hpp) |
//   pool error     | 2 | u8 PoolErrorKind | i64 pid | what |
//
// A chunk's ns is how long the worker ran it (decoding it and calling f on
// its items), in nanoseconds: imap sizes its next chunks by it.
//
// An error is what the task threw; a pool error is one the pool raised
// about the task where it ran (its worker was lost, it timed out, was
// cancelled or closed): a backend that runs the task through another pool
// (MPI ranks) sends it on with its type kept.
//
// Parent side: build_apply / build_chunk encode a task message;
// deliver_apply_result and read_chunk decode a result message.
// Worker side: run_task resolves the FunctionId to its trampoline
// (apply_trampoline, chunk_trampoline): a plain function instantiated for
// (F, Args...) and named by its load-address-independent FunctionId
// (function_id.hpp), so the worker needs nothing but the bytes. It decodes
// the payload, calls F and writes the result message to a ResultOut.
#pragma once

#include <mp/detail/compiled.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <mp/codec.hpp>
#include <mp/detail/backend.hpp>
#include <mp/detail/function_id.hpp>
#include <mp/detail/item_counter.hpp>
#include <mp/detail/item_slot.hpp>
#include <mp/detail/sendable.hpp>
#include <mp/detail/signature.hpp>
#include <mp/detail/wire_error.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

/// Where a worker writes the result of the task it runs (the backend's
/// result channel). write(n, enc): enc(p) writes exactly n bytes at p; it
/// may refuse a value message above PoolOptions::max_result_bytes by
/// throwing std::length_error. write_error writes an error message, which
/// is never refused for its size (else a task whose error cannot be sent
/// would leave its future waiting).
class ResultOut {
public:
  virtual void write(std::size_t n, EncodeRef enc) = 0;
  virtual void write_error(std::size_t n, EncodeRef enc) { write(n, enc); }

protected:
  ~ResultOut() = default;
};

using Trampoline = void (*)(Reader& in, ResultOut& out);

enum class ResultStatus : std::uint8_t { ok = 0, error = 1, pool_error = 2 };

/// Which of mp's own errors a pool error result stands for.
enum class PoolErrorKind : std::uint8_t { worker_lost, timeout, cancelled, closed, task_timeout };

/// Whether values of T travel as their object representation (memcpy-able,
/// every byte pattern valid: an aggregate holding a bool is not).
template <class T>
inline constexpr bool memcpy_wire = std::is_trivially_copyable_v<T> && Codec<T>::bitwise;

// ---- result messages: encoding (worker) ----------------------------------------

/// Writes the ok message of a result `r` (nothing for void).
template <class R>
void write_ok(ResultOut& out, const R* r) {
  std::size_t n = 1;
  if constexpr (!std::is_void_v<R>) n += encoded_size(*r);
  auto enc = [&](std::byte* p) {
    *p = std::byte{static_cast<std::uint8_t>(ResultStatus::ok)};
    if constexpr (!std::is_void_v<R>) encode_to(p + 1, *r);
  };
  out.write(n, enc);
}

/// Writes a chunk's ok message: how long it ran (ns), then the results, or
/// for void only their count.
template <class R>
void write_chunk_ok(ResultOut& out, std::uint64_t ns, const R& results) {
  auto enc = [&](std::byte* p) {
    *p = std::byte{static_cast<std::uint8_t>(ResultStatus::ok)};
    encode_to(p + 1, ns, results);
  };
  out.write(1 + encoded_size(ns, results), enc);
}

/// Nanoseconds from `start` to now.
inline std::uint64_t ns_since(Clock::time_point start) noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
}

/// Writes an error result for the exception being handled (call in catch).
MP_COMPILED void write_current_error(ResultOut& out, std::uint64_t index) noexcept;

/// Writes a pool error message. Never throws (aborts when it cannot even
/// report: the parent would wait for ever otherwise).
MP_COMPILED void write_pool_error(ResultOut& out, PoolErrorKind kind, std::int64_t pid, const std::string& what) noexcept;

/// Writes the result message of a task that failed with e where it ran:
/// mp's own pool errors as a pool error (type and pid kept, `where`
/// appended to what()), any other exception as an error. Never throws.
MP_COMPILED void write_error_result(ResultOut& out, const std::exception_ptr& e, std::string_view where) noexcept;

// ---- result messages: decoding (parent) ----------------------------------------

/// Reads a pool error's body: the exception it stands for. Throws
/// mp::DecodeError when it is malformed.
MP_COMPILED std::exception_ptr read_pool_error(Reader& r);

/// Reads a result message's status: true for ok; otherwise sets `err` to
/// the task's exception and `index` to the failing item's index in the
/// chunk, and returns false. Throws mp::DecodeError on a bad status byte.
MP_COMPILED bool read_status(Reader& r, std::exception_ptr& err, std::uint64_t& index);

/// Decodes apply's result message into `to`: to.set_value(T) (void:
/// to.set_value()), or to.fail(exception_ptr) for an error or a malformed
/// message. `to` is the typed state of the future (ResultState<T>). Never
/// throws.
template <class T, class To>
void deliver_apply_result(std::span<const std::byte> msg, To& to) noexcept {
  try {
    Reader r(msg);
    std::exception_ptr err;
    std::uint64_t idx = 0;
    if (!read_status(r, err, idx)) return to.fail(err);
    if constexpr (std::is_void_v<T>) {
      r.expect_end();
      to.set_value();
    } else {
      T v = r.read<T>();
      r.expect_end();
      to.set_value(std::move(v));
    }
  } catch (...) {
    to.fail(std::current_exception());
  }
}

/// Reads a chunk's results into out[0..count) (void: checks their count)
/// and, if run_ns is not null, how long the worker ran it into *run_ns:
/// returns false and sets err/err_index (item index inside the chunk) when
/// the chunk failed. Throws mp::DecodeError on a malformed message.
template <class R>
bool read_chunk(std::span<const std::byte> msg, R* out, std::size_t count, std::exception_ptr& err,
                std::uint64_t& err_index, std::uint64_t* run_ns = nullptr) {
  Reader r(msg);
  if (!read_status(r, err, err_index)) return false;
  const auto ns = r.read<std::uint64_t>();
  if (run_ns != nullptr) *run_ns = ns;
  const auto n = r.read<std::uint64_t>();
  if (n != count) r.fail("a chunk result has the wrong number of items");
  if constexpr (std::is_void_v<R>) {
    (void)out;
  } else if constexpr (memcpy_wire<R> && !std::is_same_v<R, bool>) {
    if (n != 0) std::memcpy(static_cast<void*>(out), r.take(count * sizeof(R)), count * sizeof(R));
  } else {
    for (std::size_t k = 0; k < count; ++k) out[k] = r.read<R>();
  }
  r.expect_end();
  return true;
}

// ---- task messages: running (worker) -------------------------------------------

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

/// map/starmap chunk: decode F and `count` items, call f on each in order,
/// send all results in one message (a void f: their count) with the time
/// that took; the first throwing item stops the chunk and its index travels
/// with the error.
template <bool Star, class F, class T>
void chunk_trampoline(Reader& in, ResultOut& out) {
  using R = std::remove_cvref_t<item_result_t<Star, F, T>>;
  const Clock::time_point start = Clock::now();
  std::uint64_t i = 0;
  try {
    F f = in.read<F>();
    const auto n = static_cast<std::size_t>(in.read<std::uint64_t>());
    ItemSlot<T> slot;
    if constexpr (std::is_void_v<R>) {
      for (; i < n; ++i) {
        call_item<Star>(f, slot.next(in));
        note_items(i + 1);
      }
      write_chunk_ok(out, ns_since(start), std::uint64_t{n});
    } else {
      std::vector<R> results;
      results.reserve(std::min<std::size_t>(n, in.remaining() + 1));
      for (; i < n; ++i) {
        results.push_back(call_item<Star>(f, slot.next(in)));
        note_items(i + 1);
      }
      write_chunk_ok(out, ns_since(start), results);
    }
  } catch (...) {
    write_current_error(out, i);
  }
}

/// Runs one task message: resolves its trampoline and calls it. Everything
/// the task throws becomes an error result; a malformed message too.
MP_COMPILED void run_task(std::span<const std::byte> msg, ResultOut& out);

// ---- task messages: encoding (parent) ------------------------------------------

/// The FunctionId of a trampoline, computed once per instantiation.
template <auto Fn>
const FunctionId& trampoline_id() {
  static const FunctionId id = function_id(Fn);
  return id;
}

/// Calls submit(n, enc) with an apply message for f(args...).
template <class F, class... Args, class Submit>
void build_apply(const F& f, const std::tuple<const Args&...>& args, Submit&& submit) {
  const FunctionId& id = trampoline_id<&apply_trampoline<F, Args...>>();
  std::size_t n = encoded_size(id) + encoded_size(f);
  std::apply([&](const auto&... a) { n += (std::size_t{0} + ... + encoded_size(a)); }, args);
  auto enc = [&](std::byte* p) {
    p = encode_to(p, id);
    p = encode_to(p, f);
    std::apply([&](const auto&... a) { ((p = encode_to(p, a)), ...); }, args);
  };
  submit(n, enc);
}

/// build_apply for f(args...) with each argument first converted to the
/// type it travels as (the ParamList of wire_args_t<F, Args...>).
template <class F, class... Ws, class... Args, class Submit>
void build_apply_as(const F& f, ParamList<Ws...>, Submit&& submit, const Args&... args) {
  (check_argument<Ws>(), ...);
  auto send = [&](const Ws&... w) { build_apply<F, Ws...>(f, std::tie(w...), submit); };
  send(as_wire<Ws>(args)...);
}

/// Calls submit(n, enc) with a chunk message of the items [first, first+count).
template <bool Star, class F, class T, class It, class Submit>
void build_chunk(const F& f, It first, std::size_t count, Submit&& submit) {
  const FunctionId& id = trampoline_id<&chunk_trampoline<Star, F, T>>();
  const auto cnt = static_cast<std::uint64_t>(count);
  std::size_t n = encoded_size(id) + encoded_size(f) + encoded_size(cnt);
  if constexpr (Codec<T>::fixed != variable_size) {
    n += count * Codec<T>::fixed;
  } else {
    It it = first;
    for (std::size_t k = 0; k < count; ++k, ++it) n += encoded_size(static_cast<const T&>(*it));
  }
  auto enc = [&](std::byte* p) {
    p = encode_to(p, id, f, cnt);
    if constexpr (std::contiguous_iterator<It> && memcpy_wire<T>) {
      if (count != 0) std::memcpy(p, std::to_address(first), count * sizeof(T));
    } else {
      It it = first;
      for (std::size_t k = 0; k < count; ++k, ++it) p = encode_to(p, static_cast<const T&>(*it));
    }
  };
  submit(n, enc);
}

#if MP_DEFINE_COMPILED

MP_COMPILED void write_current_error(ResultOut& out, std::uint64_t index) noexcept {
  try {
    const WireError w = current_wire_error();
    const std::size_t n = 1 + encoded_size(index, w);
    auto enc = [&](std::byte* p) {
      *p = std::byte{static_cast<std::uint8_t>(ResultStatus::error)};
      encode_to(p + 1, index, w);
    };
    out.write_error(n, enc);
  } catch (...) {
    std::abort();  // cannot even report: the parent would wait for ever otherwise
  }
}

MP_COMPILED void write_pool_error(ResultOut& out, PoolErrorKind kind, std::int64_t pid, const std::string& what) noexcept {
  try {
    const auto k = static_cast<std::uint8_t>(kind);
    auto enc = [&](std::byte* p) {
      *p = std::byte{static_cast<std::uint8_t>(ResultStatus::pool_error)};
      encode_to(p + 1, k, pid, what);
    };
    out.write_error(1 + encoded_size(k, pid, what), enc);
  } catch (...) {
    std::abort();
  }
}

MP_COMPILED void write_error_result(ResultOut& out, const std::exception_ptr& e, std::string_view where) noexcept {
  auto pool = [&](PoolErrorKind k, std::int64_t pid, const std::exception& x) {
    write_pool_error(out, k, pid, x.what() + std::string(where));
  };
  try {
    std::rethrow_exception(e);
  } catch (const WorkerLostError& x) {
    pool(PoolErrorKind::worker_lost, x.pid(), x);
  } catch (const TaskTimeoutError& x) {
    pool(PoolErrorKind::task_timeout, 0, x);
  } catch (const TimeoutError& x) {
    pool(PoolErrorKind::timeout, 0, x);
  } catch (const CancelledError& x) {
    pool(PoolErrorKind::cancelled, 0, x);
  } catch (const ClosedError& x) {
    pool(PoolErrorKind::closed, 0, x);
  } catch (...) {
    write_current_error(out, 0);
  }
}

MP_COMPILED std::exception_ptr read_pool_error(Reader& r) {
  const auto kind = r.read<std::uint8_t>();
  const auto pid = r.read<std::int64_t>();
  auto what = r.read<std::string>();
  switch (static_cast<PoolErrorKind>(kind)) {
    case PoolErrorKind::worker_lost: return std::make_exception_ptr(WorkerLostError(static_cast<pid_t>(pid), what));
    case PoolErrorKind::timeout: return std::make_exception_ptr(TimeoutError(what));
    case PoolErrorKind::task_timeout: return std::make_exception_ptr(TaskTimeoutError(what));
    case PoolErrorKind::cancelled: return std::make_exception_ptr(CancelledError(what));
    case PoolErrorKind::closed: return std::make_exception_ptr(ClosedError(what));
  }
  r.fail("a result message has a bad pool error kind");
}

MP_COMPILED bool read_status(Reader& r, std::exception_ptr& err, std::uint64_t& index) {
  const auto st = r.read_raw<std::uint8_t>();
  if (st == static_cast<std::uint8_t>(ResultStatus::ok)) return true;
  if (st == static_cast<std::uint8_t>(ResultStatus::error)) {
    index = r.read<std::uint64_t>();
    err = make_exception(read_wire_error(r));
  } else if (st == static_cast<std::uint8_t>(ResultStatus::pool_error)) {
    index = 0;
    err = read_pool_error(r);
  } else {
    r.fail("a result message has a bad status byte");
  }
  return false;
}

MP_COMPILED void run_task(std::span<const std::byte> msg, ResultOut& out) {
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

#endif  // MP_DEFINE_COMPILED

}  // namespace mp::detail
