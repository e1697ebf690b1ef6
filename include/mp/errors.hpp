// mp/errors.hpp - the exceptions mp throws.
//
// Every mp-specific error derives from mp::Error, which derives from
// std::runtime_error. A task's standard exception (std::runtime_error,
// std::logic_error and their standard children, std::bad_alloc) is rethrown
// as the same type with the same what(); a type registered with
// mp::register_exception<T>() as T (with its fields when it has a codec); any
// other type as mp::RemoteError.
#pragma once

#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <type_traits>
#include <utility>

namespace mp {

/// Base of every mp-specific error.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A wait ran out of time (AsyncResult::get(timeout), a per-task timeout, ...).
class TimeoutError : public Error {
public:
  using Error::Error;
};

/// A pool task ran longer than PoolOptions::task_timeout; its worker was
/// killed and replaced.
class TaskTimeoutError : public TimeoutError {
public:
  using TimeoutError::TimeoutError;
};

/// Bytes that do not decode as the type asked for: truncated, malformed or
/// corrupt input. Never undefined behaviour.
class DecodeError : public Error {
public:
  using Error::Error;
};

/// The worker process that ran the task died (a signal or an exit) before it
/// sent a result. pid() names it; what() names the signal or exit status.
class WorkerLostError : public Error {
public:
  WorkerLostError(pid_t pid, const std::string& what) : Error(what), pid_(pid) {}
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

private:
  pid_t pid_;
};

/// A task threw an exception whose type is not one of the standard types mp
/// rethrows as themselves. what() is the original what(); type_name() the
/// demangled name of the original type.
class RemoteError : public Error {
public:
  RemoteError(std::string type_name, const std::string& what)
      : Error(what), type_name_(std::move(type_name)) {}
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

private:
  std::string type_name_;
};

/// put_nowait() or put(x, timeout) found the queue full (Python's queue.Full).
class Full : public Error {
public:
  using Error::Error;
};

/// get_nowait() or get(timeout) found the queue empty (Python's queue.Empty).
class Empty : public Error {
public:
  using Error::Error;
};

/// A Barrier was aborted or reset while a process waited on it
/// (Python's threading.BrokenBarrierError).
class BrokenBarrierError : public Error {
public:
  using Error::Error;
};

/// A process died while holding a lock, and what the lock guards cannot be
/// trusted any more; the lock is usable again after this error.
class OwnerDeadError : public Error {
public:
  using Error::Error;
};

/// A pool task was cancelled (AsyncResult::cancel) before it ran, or while
/// it ran (its worker was killed and replaced).
class CancelledError : public Error {
public:
  using Error::Error;
};

/// The other end of a Pipe, or every writer of a queue, is gone: a recv() or
/// get() that could never complete.
class ClosedError : public Error {
public:
  using Error::Error;
};

}  // namespace mp

namespace mp::detail {
/// Defined in <mp/detail/exception_registry.hpp>, which <mp/codec.hpp>
/// includes last (the codec needs the classes above, the registry the codec).
template <class T>
struct ExceptionRegistration;
}  // namespace mp::detail

namespace mp {

/// Makes a task's exception of type T come back to the parent as T, with the
/// same what(), instead of as mp::RemoteError; with its fields too when T has
/// a serialize(Archive&) member or an mp::codec<T> specialization. Only the
/// exact type is matched: a type derived from T stays mp::RemoteError unless
/// it is registered itself.
///
/// T derives from std::exception and is constructible from a std::string,
/// or has a codec (see <mp/codec.hpp>); otherwise, and for the standard types
/// mp already rethrows as themselves, this fails to compile with a sentence.
///
/// Naming it anywhere in the program registers T in every process of the
/// program from static initialization (forked workers, and processes started
/// from the same binary), so calling it after a pool exists works too; the
/// call itself does nothing at run time. MP_REGISTER_EXCEPTION(T) does the
/// same at namespace scope. Never blocks, never throws; thread-safe.
///
/// The file that calls it includes <mp/codec.hpp> (as <mp/mp.hpp>,
/// <mp/pool.hpp> and every header that sends data do).
template <class T>
void register_exception() noexcept {
  using E = std::remove_cvref_t<T>;
  if constexpr (requires { detail::ExceptionRegistration<E>::run(); }) {
    detail::ExceptionRegistration<E>::run();
  } else {
    static_assert(sizeof(E) == 0,
                  "mp::register_exception<T> is completed by the codec: include <mp/codec.hpp> (or <mp/mp.hpp>, "
                  "<mp/pool.hpp>) in the file that registers T.");
  }
}

}  // namespace mp

/// mp::register_exception<T>() as a declaration at namespace scope:
/// `MP_REGISTER_EXCEPTION(BadRecord);`
#define MP_REGISTER_EXCEPTION(...)                                                          \
  [[maybe_unused]] static const bool MP_DETAIL_CAT(mp_registered_exception_, __COUNTER__) = \
      (::mp::register_exception<__VA_ARGS__>(), true)
#define MP_DETAIL_CAT(a, b) MP_DETAIL_CAT2(a, b)
#define MP_DETAIL_CAT2(a, b) a##b
