// mp/detail/shm.hpp - shared-memory segments: anonymous (inherited across
// fork, nothing in /dev/shm) or named (unrelated processes open by name).
//
// Every segment starts with a SegmentHeader:
//
//   offset 0   +--------------------------------------------+
//              | magic   u64  (layout-specific, stored last) |
//              | version u32  | reserved u32                 |
//              | size    u64  (bytes mapped, header incl.)   |
//              | ... padding to cache_line (64) ...          |
//   offset 64  +--------------------------------------------+
//              | the layout's own data (offsets, no pointers)|
//              +--------------------------------------------+
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <thread>
#include <utility>

#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <mp/detail/config.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

struct SegmentHeader {
  std::atomic<std::uint64_t> magic;
  std::uint32_t version;
  std::uint32_t reserved;
  std::uint64_t size;
};
static_assert(sizeof(SegmentHeader) <= cache_line);

/// Offset of a layout's data inside a segment.
inline constexpr std::size_t segment_data_offset = cache_line;

/// A mapped shared-memory segment. Movable, not copyable; unmaps on
/// destruction (a named segment stays in /dev/shm until remove()).
class Segment {
public:
  Segment() = default;

  /// Maps `size` bytes of anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS):
  /// children forked afterwards share it; nothing appears in /dev/shm.
  /// Throws std::bad_alloc-like boost errors converted to mp::Error.
  static Segment anonymous(std::size_t size) {
    try {
      return Segment(boost::interprocess::anonymous_shared_memory(size));
    } catch (const boost::interprocess::interprocess_exception& e) {
      throw Error(std::string("mp: cannot map ") + std::to_string(size) +
                  " bytes of anonymous shared memory: " + e.what());
    }
  }

  /// Creates the named segment /dev/shm/<name> with permissions 0600 and maps
  /// it. Throws mp::Error if it already exists or cannot be made.
  static Segment create(const std::string& name, std::size_t size) {
    namespace bip = boost::interprocess;
    try {
      bip::permissions perm;
      perm.set_permissions(0600);
      bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, perm);
      shm.truncate(static_cast<bip::offset_t>(size));
      return Segment(bip::mapped_region(shm, bip::read_write));
    } catch (const bip::interprocess_exception& e) {
      throw Error("mp: cannot create shared memory '" + name + "': " + e.what());
    }
  }

  /// Maps the existing named segment. Throws mp::Error if it does not exist.
  static Segment open(const std::string& name) {
    namespace bip = boost::interprocess;
    try {
      bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
      return Segment(bip::mapped_region(shm, bip::read_write));
    } catch (const bip::interprocess_exception& e) {
      throw Error("mp: cannot open shared memory '" + name + "': " + e.what());
    }
  }

  /// Removes /dev/shm/<name>; processes that mapped it keep their mapping.
  /// Returns false if there was nothing to remove. Never throws.
  static bool remove(const std::string& name) noexcept {
    return boost::interprocess::shared_memory_object::remove(name.c_str());
  }

  [[nodiscard]] std::byte* base() const noexcept { return static_cast<std::byte*>(region_.get_address()); }
  [[nodiscard]] std::size_t size() const noexcept { return region_.get_size(); }
  [[nodiscard]] explicit operator bool() const noexcept { return region_.get_address() != nullptr; }

  /// The object of type T at `offset` bytes from the start.
  template <class T>
  [[nodiscard]] T* at(std::size_t offset) const noexcept {
    return std::launder(reinterpret_cast<T*>(base() + offset));
  }

  [[nodiscard]] SegmentHeader& header() const noexcept { return *at<SegmentHeader>(0); }

  /// Writes the header; the magic is stored last (release), so an opener that
  /// sees it sees a fully initialised layout. Call after initialising the data.
  void publish(std::uint64_t magic, std::uint32_t version) const noexcept {
    SegmentHeader& h = header();
    h.version = version;
    h.size = size();
    h.magic.store(magic, std::memory_order_release);
  }

  /// Checks the header of a segment someone else made: waits up to ~1 s for a
  /// creator still initialising, then throws mp::Error on a wrong magic,
  /// version or size.
  void check(std::uint64_t magic, std::uint32_t version, const std::string& what) const {
    const SegmentHeader& h = header();
    for (int i = 0; i < 1000 && h.magic.load(std::memory_order_acquire) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (size() < segment_data_offset || h.magic.load(std::memory_order_acquire) != magic)
      throw Error("mp: shared memory " + what + " is not an mp segment of the expected kind (bad magic)");
    if (h.version != version)
      throw Error("mp: shared memory " + what + " has layout version " + std::to_string(h.version) +
                  ", this build of mp reads version " + std::to_string(version));
    if (h.size != size())
      throw Error("mp: shared memory " + what + " declares " + std::to_string(h.size) +
                  " bytes but maps " + std::to_string(size()));
  }

private:
  explicit Segment(boost::interprocess::mapped_region&& r) : region_(std::move(r)) {}
  boost::interprocess::mapped_region region_;
};

}  // namespace mp::detail
