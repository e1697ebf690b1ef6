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
#include <system_error>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mp/detail/config.hpp>
#include <mp/detail/syscall.hpp>
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
  Segment(Segment&& o) noexcept
      : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Segment& operator=(Segment&& o) noexcept {
    if (this != &o) {
      unmap();
      base_ = std::exchange(o.base_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment() { unmap(); }

  /// Maps `size` bytes of anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS):
  /// children forked afterwards share it; nothing appears in /dev/shm.
  /// Throws mp::Error naming the size and mmap's error.
  static Segment anonymous(std::size_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      throw Error("mp: cannot map " + std::to_string(size) + " bytes of anonymous shared memory: mmap: " +
                  error_text(errno));
    }
    return Segment(static_cast<std::byte*>(p), size);
  }

  /// Creates the named segment /dev/shm/<name> with permissions 0600 and maps
  /// it. Throws mp::Error if it already exists or cannot be made (then
  /// nothing is left in /dev/shm).
  static Segment create(const std::string& name, std::size_t size) {
    const std::string path = shm_path(name);
    const int fd = retry_eintr([&] { return ::shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600); });
    if (fd < 0) throw Error("mp: cannot create shared memory '" + name + "': shm_open: " + error_text(errno));
    const char* failed = nullptr;
    if (retry_eintr([&] { return ::fchmod(fd, 0600); }) != 0) failed = "fchmod";  // whatever the umask
    else if (retry_eintr([&] { return ::ftruncate(fd, static_cast<off_t>(size)); }) != 0) failed = "ftruncate";
    int err = 0;
    void* p = map_and_close(fd, size, failed, err);
    if (failed) {
      ::shm_unlink(path.c_str());
      throw Error("mp: cannot create shared memory '" + name + "': " + failed + ": " + error_text(err));
    }
    return Segment(static_cast<std::byte*>(p), size);
  }

  /// Maps the existing named segment, all of it. Throws mp::Error if it does
  /// not exist or cannot be mapped.
  static Segment open(const std::string& name) {
    const std::string path = shm_path(name);
    const int fd = retry_eintr([&] { return ::shm_open(path.c_str(), O_RDWR, 0); });
    if (fd < 0) throw Error("mp: cannot open shared memory '" + name + "': shm_open: " + error_text(errno));
    struct stat st {};
    const char* failed = ::fstat(fd, &st) != 0 ? "fstat" : nullptr;
    const auto size = static_cast<std::size_t>(st.st_size);
    int err = 0;
    void* p = map_and_close(fd, size, failed, err);
    if (failed) throw Error("mp: cannot open shared memory '" + name + "': " + failed + ": " + error_text(err));
    return Segment(static_cast<std::byte*>(p), size);
  }

  /// Removes /dev/shm/<name>; processes that mapped it keep their mapping.
  /// Returns false if there was nothing to remove. Never throws.
  static bool remove(const std::string& name) noexcept {
    try {
      return ::shm_unlink(shm_path(name).c_str()) == 0;
    } catch (...) {  // out of memory for the path
      return false;
    }
  }

  [[nodiscard]] std::byte* base() const noexcept { return base_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] explicit operator bool() const noexcept { return base_ != nullptr; }

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
  /// The last steps of create() and open(): maps `size` bytes of fd unless
  /// `failed` already names a failed call, and closes fd. On failure `failed`
  /// names the call that failed and `err` holds its errno.
  static void* map_and_close(int fd, std::size_t size, const char*& failed, int& err) noexcept {
    void* p = failed ? MAP_FAILED : ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED && !failed) failed = "mmap";
    err = errno;
    ::close(fd);
    return p;
  }

  Segment(std::byte* base, std::size_t size) noexcept : base_(base), size_(size) {}

  /// shm_open's name: "/" + name, unless name starts with "/".
  static std::string shm_path(const std::string& name) { return name.starts_with('/') ? name : "/" + name; }
  static std::string error_text(int err) { return std::generic_category().message(err); }

  void unmap() noexcept {
    if (base_ != nullptr) ::munmap(base_, size_);
    base_ = nullptr;
    size_ = 0;
  }

  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace mp::detail
