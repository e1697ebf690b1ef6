// mp/detail/function_id.hpp - function pointers as load-address-independent ids.
//
// A function pointer is sent as FunctionId{module, offset}: `module` is a
// 64-bit FNV-1a hash of the ELF build-id of the module (executable or shared
// library) that holds the code, or of its path when it has no build-id;
// `offset` the address minus that module's load bias. The decoding process
// finds the module with the same id among its own loaded modules
// (dl_iterate_phdr) and adds its own load bias, so the id survives fork, a
// fresh exec of the same binary under ASLR, and the same binary at another
// path or on another machine.
//
// The module table is an immutable snapshot published through an atomic
// pointer (no lock, so it is safe in a child forked from a threaded parent);
// a new snapshot is built only when the loader's add/remove counters changed.
// Each thread caches the last module it encoded for and the last it resolved
// in, so a repeated function_id()/resolve_function() costs a few ns.
//
// The main executable appears in dl_iterate_phdr with an empty name; its path
// is taken from /proc/self/exe. A null function pointer is the id {0, 0}.
// Member-function pointers: MemberFunctionId, at the end of this header.
// Limits: a resolved offset is checked to lie inside an executable segment of
// the module, not to be the start of a function (a forged id that passes that
// check is as unsafe as a forged raw pointer); a module unloaded and another
// loaded at the same place while a thread's cache still holds it is not
// noticed by that cache.
#pragma once

#include <mp/detail/compiled.hpp>
#include <mp/errors.hpp>

#include <atomic>
#include <bit>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>
#if MP_DEFINE_COMPILED
#include <elf.h>
#include <link.h>
#endif

namespace mp::detail {

/// Where a function lives, independent of the module's load address.
struct FunctionId {
  std::uint64_t module;  ///< module_id(): build-id or path hash (0 only for null)
  std::uint64_t offset;  ///< address minus the module's load bias
  friend bool operator==(const FunctionId&, const FunctionId&) = default;
};

/// FNV-1a, 64 bit; never returns 0 (0 marks the null function pointer).
constexpr std::uint64_t fnv1a64(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h == 0 ? 1 : h;
}

/// One executable segment of one loaded module (absolute addresses).
struct ModuleRange {
  std::uint64_t module = 0;  // module_id()
  std::uintptr_t base = 0;   // load bias (dlpi_addr)
  std::uintptr_t lo = 0;     // segment start
  std::uintptr_t hi = 0;     // segment end (exclusive)
};

struct ModuleSnapshot {
  unsigned long long adds = 0;
  unsigned long long subs = 0;
  std::vector<ModuleRange> ranges;
  const ModuleSnapshot* prev = nullptr;  // kept reachable; never freed
};

/// module_id() of the main executable. Computed once; thread-safe.
MP_COMPILED std::uint64_t main_module_id();
/// function_id() and resolve_function() when the thread's cached module
/// does not hold the address / id: they search (and refresh) the snapshot.
MP_COMPILED FunctionId function_id_slow(std::uintptr_t a);
MP_COMPILED const void* resolve_function_slow(FunctionId id);

inline thread_local ModuleRange tls_encode_module{};
inline thread_local ModuleRange tls_resolve_module{};

/// The id of the function at fn (a function pointer cast to const void*).
/// Does not block; thread-safe. Throws std::invalid_argument when fn lies in
/// no loaded module's code (e.g. JIT code). fn == nullptr gives {0, 0}.
inline FunctionId function_id(const void* fn) {
  const auto a = std::bit_cast<std::uintptr_t>(fn);
  if (a == 0) return {0, 0};
  const ModuleRange& c = tls_encode_module;
  if (a - c.lo < c.hi - c.lo) return {c.module, a - c.base};
  return function_id_slow(a);
}

/// The address of the function `id` names in this process. Does not block;
/// thread-safe. Throws mp::DecodeError when no loaded module has that path
/// hash or the offset is outside the module's executable segments.
inline const void* resolve_function(FunctionId id) {
  if (id.module == 0 && id.offset == 0) return nullptr;
  const ModuleRange& c = tls_resolve_module;
  if (id.module == c.module && id.offset - (c.lo - c.base) < c.hi - c.lo) {
    return std::bit_cast<const void*>(c.base + id.offset);
  }
  return resolve_function_slow(id);
}

/// function_id() for a typed function pointer.
template <class F>
  requires std::is_function_v<F>
FunctionId function_id(F* fn) {
  return function_id(std::bit_cast<const void*>(fn));
}

/// resolve_function() cast back to the function pointer type Fp (e.g. int(*)(int)).
template <class Fp>
  requires(std::is_pointer_v<Fp> && std::is_function_v<std::remove_pointer_t<Fp>>)
Fp resolve_function_as(FunctionId id) {
  return std::bit_cast<Fp>(resolve_function(id));
}

/// Where a member function lives, independent of the load address. Itanium
/// C++ ABI: a member-function pointer is {ptr, adj}; ptr is the function's
/// address (non-virtual) or 1 + the byte offset of its vtable slot (virtual,
/// odd), adj the this-adjustment in bytes. `fn` is function_id(ptr) for a
/// non-virtual member, {0, ptr} for a virtual one (the slot offset is the
/// same in every process of the binary), {0, 0} for null.
struct MemberFunctionId {
  FunctionId fn;
  std::int64_t adj;
  friend bool operator==(const MemberFunctionId&, const MemberFunctionId&) = default;
};

struct ItaniumMemberPointer {
  std::uintptr_t ptr;
  std::ptrdiff_t adj;
};

template <class M>
concept member_function_pointer = std::is_member_function_pointer_v<M> && sizeof(M) == sizeof(ItaniumMemberPointer);

/// The id of a member-function pointer. Does not block; thread-safe. Throws
/// std::invalid_argument when a non-virtual member lies in no loaded module.
template <member_function_pointer M>
MemberFunctionId member_function_id(M m) {
  const auto raw = std::bit_cast<ItaniumMemberPointer>(m);
  const FunctionId fn = (raw.ptr & 1u) != 0 || raw.ptr == 0 ? FunctionId{0, raw.ptr}
                                                            : function_id(std::bit_cast<const void*>(raw.ptr));
  return {fn, static_cast<std::int64_t>(raw.adj)};
}

/// The member-function pointer `id` names in this process. Does not block;
/// thread-safe. Throws mp::DecodeError for an id that names no member
/// function (an even vtable offset, or what resolve_function rejects).
template <member_function_pointer M>
M resolve_member_function_as(MemberFunctionId id) {
  ItaniumMemberPointer raw{0, static_cast<std::ptrdiff_t>(id.adj)};
  if (id.fn.module == 0) {
    if (id.fn.offset != 0 && (id.fn.offset & 1u) == 0)
      throw DecodeError("mp cannot decode a member-function pointer: its vtable slot offset is malformed.");
    raw.ptr = static_cast<std::uintptr_t>(id.fn.offset);
  } else {
    raw.ptr = std::bit_cast<std::uintptr_t>(resolve_function(id.fn));
  }
  return std::bit_cast<M>(raw);
}

#if MP_DEFINE_COMPILED

/// Path of the running executable (computed once).
inline const std::string& self_exe_path() {
  static const std::string path = [] {
    std::string buf(PATH_MAX, '\0');
    ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size());
    buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return buf;
  }();
  return path;
}

/// The loader's (adds, subs) counters: they change on every dlopen/dlclose.
inline std::pair<unsigned long long, unsigned long long> loader_generation() noexcept {
  std::pair<unsigned long long, unsigned long long> g{0, 0};
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t size, void* data) -> int {
        auto* out = static_cast<std::pair<unsigned long long, unsigned long long>*>(data);
        if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
          *out = {info->dlpi_adds, info->dlpi_subs};
        }
        return 1;  // the counters are global: one module is enough
      },
      &g);
  return g;
}

/// The id of a loaded module: FNV-1a of its ELF build-id (the
/// NT_GNU_BUILD_ID note), which is the same for the same binary on every
/// machine and at every path; FNV-1a of `path` when it has none.
inline std::uint64_t module_id(const dl_phdr_info* info, std::string_view path) noexcept {
  for (std::size_t i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    const unsigned char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto* n = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const unsigned char* name = p + sizeof(ElfW(Nhdr));
      const unsigned char* desc = name + ((n->n_namesz + 3u) & ~3u);
      if (desc + n->n_descsz > end) break;
      if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0 && n->n_descsz > 0)
        return fnv1a64(std::string_view(reinterpret_cast<const char*>(desc), n->n_descsz));
      p = desc + ((n->n_descsz + 3u) & ~3u);
    }
  }
  return fnv1a64(path);
}

MP_COMPILED std::uint64_t main_module_id() {
  static const std::uint64_t id = [] {
    std::uint64_t out = 0;
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
          *static_cast<std::uint64_t*>(data) = module_id(info, self_exe_path());
          return 1;  // dl_iterate_phdr lists the executable first
        },
        &out);
    return out;
  }();
  return id;
}

struct ModuleCollector {
  std::vector<ModuleRange>* ranges;
  bool first = true;  // dl_iterate_phdr lists the executable first
};

inline int collect_module_ranges(dl_phdr_info* info, std::size_t, void* data) {
  auto* col = static_cast<ModuleCollector*>(data);
  const bool first = std::exchange(col->first, false);
  std::string_view name = info->dlpi_name ? info->dlpi_name : "";
  if (name.empty() && !first) return 0;  // only the executable is nameless
  const std::uint64_t module = module_id(info, name.empty() ? std::string_view(self_exe_path()) : name);
  for (std::size_t i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    col->ranges->push_back({module, info->dlpi_addr, lo, lo + ph.p_memsz});
  }
  return 0;
}

/// The current module snapshot; rebuilt when the loader's counters moved.
/// Never blocks (no lock); safe across threads and after fork.
inline const ModuleSnapshot* module_snapshot(bool refresh) {
  static std::atomic<const ModuleSnapshot*> current{nullptr};
  const ModuleSnapshot* snap = current.load(std::memory_order_acquire);
  if (snap && !refresh) return snap;
  const auto gen = loader_generation();
  if (snap && snap->adds == gen.first && snap->subs == gen.second) return snap;
  auto* fresh = new ModuleSnapshot;
  ModuleCollector col{&fresh->ranges};
  ::dl_iterate_phdr(&collect_module_ranges, &col);
  fresh->adds = gen.first;
  fresh->subs = gen.second;
  fresh->prev = snap;
  if (!current.compare_exchange_strong(snap, fresh, std::memory_order_acq_rel)) {
    delete fresh;  // another thread published first; use its snapshot
    return snap;
  }
  return fresh;
}

inline bool find_range_by_address(const ModuleSnapshot* snap, std::uintptr_t a, ModuleRange& out) {
  for (const auto& r : snap->ranges) {
    if (a >= r.lo && a < r.hi) {
      out = r;
      return true;
    }
  }
  return false;
}

inline bool find_range_by_id(const ModuleSnapshot* snap, FunctionId id, ModuleRange& out) {
  for (const auto& r : snap->ranges) {
    if (r.module == id.module && id.offset >= r.lo - r.base && id.offset < r.hi - r.base) {
      out = r;
      return true;
    }
  }
  return false;
}

MP_COMPILED FunctionId function_id_slow(std::uintptr_t a) {
  ModuleRange r;
  if (!find_range_by_address(module_snapshot(false), a, r) &&
      !find_range_by_address(module_snapshot(true), a, r)) {
    throw std::invalid_argument(
        "mp cannot encode this function pointer: it does not point into the code of any loaded module.");
  }
  tls_encode_module = r;
  return {r.module, a - r.base};
}

MP_COMPILED const void* resolve_function_slow(FunctionId id) {
  ModuleRange r;
  if (!find_range_by_id(module_snapshot(false), id, r) &&
      !find_range_by_id(module_snapshot(true), id, r)) {
    throw DecodeError(
        "mp cannot decode a function pointer: its module is not loaded in this process, "
        "or its offset lies outside that module's code.");
  }
  tls_resolve_module = r;
  return std::bit_cast<const void*>(r.base + id.offset);
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp::detail
