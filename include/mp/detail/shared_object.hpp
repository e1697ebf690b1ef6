// mp/detail/shared_object.hpp - one small shared object per anonymous segment.
//
// Every primitive (Lock, Event, Value, ...) lives in its own anonymous shared
// segment, mapped when the primitive is constructed. A process forked after
// that shares it; one forked before does not. The handle a user holds is a
// cheap copyable SharedObject<L>: a shared_ptr to the Segment plus a pointer to
// the layout L, so copies (and captures by value) name the same shared object.
//
//   offset 0   +-------------------------------------------+
//              | SegmentHeader: magic, version, size        |
//   offset 64  +-------------------------------------------+
//              | L (the primitive's layout: atomics, a      |
//              |   RobustMutex, counters; never pointers)   |
//              | [trailing bytes, e.g. Array<T>'s elements] |
//              +-------------------------------------------+
#pragma once

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <atomic>
#include <memory>
#include <new>
#include <pthread.h>
#include <sys/types.h>
#include <type_traits>
#include <unistd.h>
#include <utility>

#include <mp/detail/shm.hpp>

namespace mp::detail {

/// A handle to a layout L placed in its own anonymous shared segment.
/// Copyable; copies refer to the same shared object. Not thread-safe to
/// reassign concurrently; the object it points to is what is shared.
template <class L>
class SharedObject {
public:
  static_assert(std::is_trivially_destructible_v<L>,
                "A shared layout must be trivially destructible: processes that unmap it never run its destructor.");

  SharedObject() = default;

  /// Maps sizeof(L) + extra bytes, value-initialises an L at offset 64, runs
  /// init(L&), then publishes the header. Throws mp::Error (mapping) or
  /// whatever init throws.
  template <class Init>
  static SharedObject make(std::uint64_t magic, std::uint32_t version, std::size_t extra, Init&& init) {
    auto seg = std::make_shared<Segment>(Segment::anonymous(segment_data_offset + sizeof(L) + extra));
    L* obj = ::new (static_cast<void*>(seg->base() + segment_data_offset)) L{};
    init(*obj);
    seg->publish(magic, version);
    SharedObject s;
    s.seg_ = std::move(seg);
    s.obj_ = obj;
    return s;
  }

  [[nodiscard]] L* get() const noexcept { return obj_; }
  [[nodiscard]] L* operator->() const noexcept { return obj_; }
  [[nodiscard]] L& operator*() const noexcept { return *obj_; }
  [[nodiscard]] explicit operator bool() const noexcept { return obj_ != nullptr; }
  /// The bytes after L (for layouts with a trailing array).
  [[nodiscard]] std::byte* trailing() const noexcept {
    return reinterpret_cast<std::byte*>(obj_) + sizeof(L);
  }

private:
  std::shared_ptr<Segment> seg_;
  L* obj_ = nullptr;
};

/// getpid() and gettid() without a system call per use: glibc caches
/// neither, and a Lock records its owner on every acquire. A pthread_atfork
/// handler refreshes both in the child (whose only thread is the forker).
struct SelfIds {
  std::atomic<pid_t> pid{::getpid()};
  static inline thread_local pid_t tid = 0;

  SelfIds() { ::pthread_atfork(nullptr, nullptr, &SelfIds::after_fork_in_child); }
  static SelfIds& instance() noexcept {
    static SelfIds ids;
    return ids;
  }
  static void after_fork_in_child() noexcept {
    instance().pid.store(::getpid(), std::memory_order_relaxed);
    tid = ::gettid();
  }
};

/// This process's pid, cached. Never blocks; thread-safe.
inline pid_t self_pid() noexcept { return SelfIds::instance().pid.load(std::memory_order_relaxed); }

/// This thread's kernel tid (unique among live threads of every process), cached.
inline pid_t self_tid() noexcept {
  (void)SelfIds::instance();  // registers the fork handler before the first cache
  if (SelfIds::tid == 0) SelfIds::tid = ::gettid();
  return SelfIds::tid;
}

/// True while `pid` names a process that has not exited: false for a pid that
/// does not exist and for a zombie (exited, not yet reaped), whose units or
/// locks will never be released. Never blocks; never throws.
inline bool pid_alive(pid_t pid) noexcept {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::FILE* f = std::fopen(path, "re");
  if (f == nullptr) return true;  // no /proc: trust kill()
  // Format: "pid (comm) S ..."; comm may hold spaces and ')', so find the last ')'.
  char buf[512];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* close = nullptr;
  for (const char* p = buf; *p != '\0'; ++p)
    if (*p == ')') close = p;
  if (close == nullptr || close[1] == '\0' || close[2] == '\0') return true;
  return close[2] != 'Z' && close[2] != 'X';
}

}  // namespace mp::detail
