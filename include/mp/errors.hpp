// mp/errors.hpp - the exceptions mp throws.
//
// Every mp-specific error derives from mp::Error, which derives from
// std::runtime_error. A task's standard exception (std::runtime_error,
// std::logic_error and their standard children, std::bad_alloc) is rethrown
// as the same type with the same what(); any other type comes back as
// mp::RemoteError.
#pragma once

#include <stdexcept>
#include <string>
#include <sys/types.h>
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
