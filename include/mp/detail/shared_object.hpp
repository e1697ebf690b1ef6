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
//
// Handles as task arguments. A handle travels as an identity: per segment,
// its base address and a creation serial (creator's pid << 32 | a counter).
// Every process keeps a registry of the segments it created; a forked child
// inherits the registry with the mappings, so the registry of a process
// lists exactly the segments mapped in it. Decoding looks the identity up in
// the registry before it touches the address, and checks the segment
// header's magic: an object made after the decoding process was forked (a
// Value made after the Pool's workers started) is not mapped there, and
// decoding it throws std::logic_error instead of reading unmapped memory.
// Each primitive opts in with a private mp_handle_fields_() (its
// SharedObjects and nested handles) and a HandleTag constructor from them.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <memory>
#include <new>
#include <pthread.h>
#include <sys/types.h>
#include <type_traits>
#include <unistd.h>
#include <utility>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

#include <mp/detail/compiled.hpp>
#include <mp/detail/codec_traits.hpp>
#include <mp/detail/handle_access.hpp>
#include <mp/detail/pids.hpp>
#include <mp/detail/shm.hpp>

namespace mp::detail {

/// The segments of SharedObjects this process created or inherited through
/// fork. The lock is taken around fork (pthread_atfork), so a child never
/// inherits it held. Thread-safe.
class SegmentRegistry {
public:
  struct Entry {
    std::uint64_t serial;
    std::uint64_t magic;
    std::weak_ptr<Segment> seg;
  };

  static SegmentRegistry& instance();

  /// Records seg (made by this process) and returns its serial.
  std::uint64_t add(const std::shared_ptr<Segment>& seg, std::uint64_t magic);

  /// Forgets the segment at base (it is being unmapped). Never throws.
  void remove(const void* base) noexcept;

  /// The segment with this identity, or null when it is not mapped here.
  std::shared_ptr<Segment> find(std::uintptr_t base, std::uint64_t serial, std::uint64_t magic);

private:
  SegmentRegistry() {
    ::pthread_atfork([] { instance().m_.lock(); }, [] { instance().m_.unlock(); }, [] { instance().m_.unlock(); });
  }
  std::mutex m_;
  std::uint64_t counter_ = 0;
  std::unordered_map<std::uintptr_t, Entry> entries_;  ///< by segment base address
};

#if MP_DEFINE_COMPILED

MP_COMPILED SegmentRegistry& SegmentRegistry::instance() {
  static SegmentRegistry* r = new SegmentRegistry;  // never destroyed: used by exit-time destructors
  return *r;
}

MP_COMPILED std::uint64_t SegmentRegistry::add(const std::shared_ptr<Segment>& seg, std::uint64_t magic) {
  std::lock_guard g(m_);
  const std::uint64_t serial = (static_cast<std::uint64_t>(self_pid()) << 32) | (++counter_ & 0xffffffffu);
  entries_[reinterpret_cast<std::uintptr_t>(seg->base())] = Entry{serial, magic, seg};
  return serial;
}

MP_COMPILED void SegmentRegistry::remove(const void* base) noexcept {
  std::lock_guard g(m_);
  entries_.erase(reinterpret_cast<std::uintptr_t>(base));
}

MP_COMPILED std::shared_ptr<Segment> SegmentRegistry::find(std::uintptr_t base, std::uint64_t serial, std::uint64_t magic) {
  std::lock_guard g(m_);
  const auto it = entries_.find(base);
  if (it == entries_.end() || it->second.serial != serial || it->second.magic != magic) return nullptr;
  std::shared_ptr<Segment> seg = it->second.seg.lock();
  if (!seg || seg->header().magic.load(std::memory_order_acquire) != magic) return nullptr;
  return seg;
}

#endif  // MP_DEFINE_COMPILED

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
    std::shared_ptr<Segment> seg(new Segment(Segment::anonymous(segment_data_offset + sizeof(L) + extra)),
                                 [](Segment* p) {
                                   SegmentRegistry::instance().remove(p->base());
                                   delete p;
                                 });
    L* obj = ::new (static_cast<void*>(seg->base() + segment_data_offset)) L{};
    init(*obj);
    seg->publish(magic, version);
    SharedObject s;
    s.serial_ = SegmentRegistry::instance().add(seg, magic);
    s.magic_ = magic;
    s.seg_ = std::move(seg);
    s.obj_ = obj;
    return s;
  }

  /// The handle of the segment with this identity, mapped in this process.
  /// Throws std::logic_error when it is not (made after this process was
  /// forked, or already destroyed). Never touches an unregistered address.
  static SharedObject find(std::uintptr_t base, std::uint64_t serial, std::uint64_t magic) {
    std::shared_ptr<Segment> seg = SegmentRegistry::instance().find(base, serial, magic);
    if (!seg || seg->size() < segment_data_offset + sizeof(L))
      throw std::logic_error(
          "mp: a shared object (mp::Value, mp::Array, mp::Lock, ...) was sent to a process where it does not "
          "exist: it was created after this process was forked (after the Pool's workers started), or it was "
          "destroyed. Create shared objects before the Pool or Process that uses them.");
    SharedObject s;
    s.serial_ = serial;
    s.magic_ = magic;
    s.obj_ = std::launder(reinterpret_cast<L*>(seg->base() + segment_data_offset));
    s.seg_ = std::move(seg);
    return s;
  }

  /// The identity a handle travels as: segment base, serial, magic.
  [[nodiscard]] std::tuple<std::uint64_t, std::uint64_t, std::uint64_t> identity() const noexcept {
    return {reinterpret_cast<std::uintptr_t>(seg_ ? seg_->base() : nullptr), serial_, magic_};
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
  std::uint64_t serial_ = 0;
  std::uint64_t magic_ = 0;
};

/// The tests' access to internals, defined in the tests (tests/test_access.hpp).
struct TestAccess;

}  // namespace mp::detail

namespace mp {

/// A SharedObject travels as its identity (see the top of this header).
template <class L>
struct codec<detail::SharedObject<L>> {
  using S = detail::SharedObject<L>;
  static std::size_t size(const S&) { return 3 * sizeof(std::uint64_t); }
  static std::byte* encode(std::byte* out, const S& s) {
    const auto id = s.identity();
    if (std::get<0>(id) == 0) throw std::invalid_argument("mp cannot send an empty shared-object handle.");
    const std::uint64_t w[3] = {std::get<0>(id), std::get<1>(id), std::get<2>(id)};
    std::memcpy(out, w, sizeof w);
    return out + sizeof w;
  }
  static S decode(detail::Reader& r) {
    const auto base = r.read_raw<std::uint64_t>();
    const auto serial = r.read_raw<std::uint64_t>();
    const auto magic = r.read_raw<std::uint64_t>();
    return S::find(static_cast<std::uintptr_t>(base), serial, magic);
  }
};

/// A primitive (Lock, Event, Value, Array, ...) travels as its handles: the
/// worker's copy is the same shared object.
template <class T>
  requires detail::shared_handle<T>
struct codec<T> {
  using Fields = decltype(detail::HandleAccess::fields(std::declval<const T&>()));
  static std::size_t size(const T& t) {
    return std::apply([](const auto&... f) { return (std::size_t{0} + ... + detail::encoded_size(f)); },
                      detail::HandleAccess::fields(t));
  }
  static std::byte* encode(std::byte* out, const T& t) {
    std::apply([&](const auto&... f) { ((out = detail::encode_to(out, f)), ...); }, detail::HandleAccess::fields(t));
    return out;
  }
  static T decode(detail::Reader& r) { return decode_fields(r, std::make_index_sequence<std::tuple_size_v<Fields>>{}); }

private:
  template <std::size_t... I>
  static T decode_fields(detail::Reader& r, std::index_sequence<I...>) {
    std::tuple<std::remove_cvref_t<std::tuple_element_t<I, Fields>>...> f{
        r.read<std::remove_cvref_t<std::tuple_element_t<I, Fields>>>()...};
    return std::apply([](auto&... h) { return detail::HandleAccess::make<T>(std::move(h)...); }, f);
  }
};

}  // namespace mp
