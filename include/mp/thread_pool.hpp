// mp/thread_pool.hpp - mp::ThreadPool, Python's multiprocessing.pool.ThreadPool:
// mp::Pool's whole API over threads of this process.
//
//   mp::ThreadPool pool;                              // hardware_concurrency() threads
//   auto squares = pool.map(square, std::views::iota(0, 1000));
//   mp::AsyncResult<int> r = pool.apply_async(add, 1, 2);
//
// The same basic_pool (pool.hpp) as mp::Pool, over detail::ThreadBackend:
// tasks are the same messages (so the same sending rules hold, and code
// moves between Pool and ThreadPool unchanged), but they go through a queue
// in this process, not shared memory. Where it differs from mp::Pool:
//
// - Size: PoolOptions::processes threads; 0 (the default) means
//   std::thread::hardware_concurrency(), as Python's ThreadPool uses
//   os.cpu_count().
// - Options a thread cannot honour throw std::invalid_argument naming the
//   field: task_timeout, memory_limit, retries, maxtasksperchild and factor.
//   max_result_bytes and initializer are honoured; an initializer that throws
//   makes the constructor throw its exception.
// - terminate() cannot kill a thread: queued tasks fail with mp::ClosedError
//   at once, running ones finish and deliver their results, and terminate()
//   returns when they did (Python's ThreadPool behaves so). From a task or a
//   then() callback it returns at once.
// - cancel(true) cannot stop a running task either: it cancels the queued
//   ones as cancel() does, and returns false when the task is running.
// - then() callbacks run on the pool thread that ran the task.
// - pids() does not compile: there are no worker processes.
// - A task that crashes (SIGSEGV, abort) ends the whole process: threads
//   give no isolation. Use mp::Pool for tasks that may crash or must be
//   stopped.
// - Shared objects (mp::Value, mp::Array, ...) and mp::inherited work, as in
//   mp::Pool; a task may also make its own Pool or ThreadPool.
#pragma once

#include <mp/pool.hpp>
#ifndef MP_SEPARATE_COMPILATION  // else compiled once, in the file including <mp/src.hpp>
#include <mp/detail/thread_backend.hpp>
#endif

namespace mp {

/// The pool of worker threads (see the top of this header for how it
/// differs from mp::Pool). Thread-safe as mp::Pool; not usable across
/// processes (a forked child cannot submit to it: std::logic_error).
#ifdef MP_SEPARATE_COMPILATION
using ThreadPool = basic_pool<detail::CompiledThreadBackend>;
#else
using ThreadPool = basic_pool<detail::ThreadBackend>;
#endif

}  // namespace mp
