// mp/mp.hpp - everything in mp, in one include.
#pragma once

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0
#define MP_VERSION_STRING "0.1.0"
/// The version as one number, major * 10000 + minor * 100 + patch (0.1.0 is
/// 100), for `#if MP_VERSION >= 100`.
#define MP_VERSION (MP_VERSION_MAJOR * 10000 + MP_VERSION_MINOR * 100 + MP_VERSION_PATCH)

#include <mp/errors.hpp>
#include <mp/codec.hpp>
#include <mp/cpu_count.hpp>
#include <mp/async_result.hpp>
#include <mp/wait.hpp>
#include <mp/partial.hpp>
#include <mp/pool_options.hpp>
#include <mp/pool.hpp>
#include <mp/progress.hpp>
#include <mp/thread_pool.hpp>
#include <mp/time_limit.hpp>
#include <mp/process.hpp>
#include <mp/queue.hpp>
#include <mp/simple_queue.hpp>
#include <mp/joinable_queue.hpp>
#include <mp/pipe.hpp>
#include <mp/lock.hpp>
#include <mp/semaphore.hpp>
#include <mp/event.hpp>
#include <mp/condition.hpp>
#include <mp/barrier.hpp>
#include <mp/sharedctypes.hpp>
