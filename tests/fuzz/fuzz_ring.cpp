// fuzz_ring - libFuzzer target for the consumer side of mp's shared-memory
// ring (detail::Ring through detail::SpscChannel), fed by a hostile producer.
//
// The ring (a Doorbell, the control block, then exactly `capacity` data
// bytes) sits in one heap block, so ASan reports any read past the data
// area. The input is a script of operations (FuzzedDataProvider):
//   - send:    the real producer sends a message (any size, up to 2x the
//              ring, so fragments and deadline-abandoned fragments happen);
//   - raw:     a fake producer writes one frame header (any type, length and
//              check, optionally a correct check) plus payload at the head
//              and publishes it, as a buggy or dying writer could;
//   - corrupt: flips a byte anywhere in the data area;
//   - recv / recv_batch / try_recv_batch / drop_partial, and a callback that
//              throws, on the consumer side (deadline: now, never blocks).
// The consumer must only deliver messages, skip frames, or throw
// mp::DecodeError (or the callback's own exception); never crash, read out
// of bounds, allocate more than was published (a FIRST fragment's total is
// forged freely), or loop without consuming. Invariants checked after every
// consumer step: tail <= head, tail 8-aligned, head - tail <= capacity.
// When the script used only the real producer (no raw frame, no corruption)
// the delivered messages must be exactly the successful sends, in order.
//
// MP_FUZZ_RING_POSITIONS=1 in the environment also lets the script overwrite
// the control block's head/tail with arbitrary values (=2: arbitrary but
// 8-aligned): a corrupted control block, outside the ring's documented model
// (see the README's tools section). Off in CI and in the committed corpus.
// The reader must then throw DecodeError (the channel is declared corrupt,
// nothing consumed) whenever head - tail > capacity or either is not
// 8-aligned, and the writer mp::Error for an unaligned head; never hang or
// read or write out of bounds.
//
// Run:  build/fuzz/tests/fuzz/fuzz_ring -max_total_time=60 tests/fuzz/corpus/fuzz_ring
#include <mp/detail/spsc.hpp>

#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/allocator_interface.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <new>
#include <stdexcept>
#include <vector>

namespace {

using mp::detail::Clock;
using mp::detail::Doorbell;
using mp::detail::FrameType;
using mp::detail::Ring;
using mp::detail::SpscChannel;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_ring: %s\n", what);
  std::abort();
}

/// Nothing here needs a large block (rings of at most 4 KiB, messages of at
/// most 8 KiB): a larger allocation means the consumer trusted a forged size
/// (a FIRST fragment's announced total) instead of the bytes that arrived.
constexpr std::size_t max_allocation = std::size_t{1} << 20;

void on_malloc(const volatile void*, std::size_t n) {
  if (n > max_allocation) fail("an allocation larger than anything published (a forged size was trusted)");
}
void on_free(const volatile void*) {}

/// One heap block: [unused line][Doorbell][RingHeader][data: cap bytes] and
/// nothing after (a doorbell offset of 0 means "none", hence the first line).
struct Arena {
  static constexpr std::size_t bell_off = mp::detail::cache_line;
  static constexpr std::size_t ring_off = bell_off + sizeof(Doorbell);
  std::size_t cap;
  std::size_t size;
  std::byte* base;
  explicit Arena(std::size_t c)
      : cap(c), size(ring_off + Ring::bytes_needed(c)),
        base(static_cast<std::byte*>(::operator new(size, std::align_val_t{mp::detail::cache_line}))) {
    std::memset(base, 0, size);
  }
  ~Arena() { ::operator delete(base, std::align_val_t{mp::detail::cache_line}); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  mp::detail::RingHeader* header() { return std::launder(reinterpret_cast<mp::detail::RingHeader*>(base + ring_off)); }
  std::byte* data() { return base + ring_off + Ring::header_bytes; }
};

/// The payload of the real producer's message number `seq`: checkable bytes.
std::vector<std::byte> message(std::uint64_t seq, std::size_t n) {
  std::vector<std::byte> m(n);
  for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<std::byte>((seq * 131 + i * 7) & 0xff);
  if (n >= sizeof seq) std::memcpy(m.data(), &seq, sizeof seq);
  return m;
}

struct Script {
  Script(FuzzedDataProvider& i, Arena& a, int forge)
      : in(i), arena(a), producer(SpscChannel::attach(a.base, Arena::ring_off)),
        consumer(SpscChannel::attach(a.base, Arena::ring_off)), positions(forge) {}

  FuzzedDataProvider& in;
  Arena& arena;
  SpscChannel producer;
  SpscChannel consumer;
  int positions;               // may overwrite head/tail (MP_FUZZ_RING_POSITIONS: 1 any, 2 aligned)
  bool clean = true;           // only the real producer wrote: exact delivery expected
  std::uint64_t seq = 0;
  std::deque<std::vector<std::byte>> sent;       // successful real sends, in order
  std::vector<std::vector<std::byte>> received;  // everything the consumer delivered
  std::uint64_t total_published = 0;             // bytes any producer published

  std::uint64_t head() { return arena.header()->head.load(std::memory_order_relaxed); }
  std::uint64_t tail() { return arena.header()->tail.load(std::memory_order_relaxed); }

  /// What the reader requires of the control block (else it is corrupt).
  bool positions_sane() {
    const std::uint64_t h = head(), t = tail();
    return h - t <= arena.cap && (h | t) % mp::detail::frame_align == 0;
  }

  void check_positions() {
    if (positions != 0) return;  // positions were forged: no invariant holds any more
    const std::uint64_t h = head(), t = tail();
    if (t > h) fail("tail passed head");
    if (t % mp::detail::frame_align != 0) fail("tail is not 8-aligned");
    if (h - t > arena.cap) fail("head - tail exceeds the capacity");
  }

  void send() {
    const std::size_t limit = 2 * arena.cap;
    std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, limit);
    if (in.ConsumeBool()) n = in.ConsumeIntegralInRange<std::size_t>(0, 64);
    std::vector<std::byte> m = message(seq++, n);
    const std::uint64_t before = head();
    try {
      if (producer.send_bytes(m, Clock::now())) sent.push_back(std::move(m));
    } catch (const mp::Error&) {  // a head that is not 8-aligned: the writer refuses it
      if (positions == 0 || positions_sane()) fail("the writer threw although head is 8-aligned");
    }
    total_published += head() - before;
  }

  void raw_frame() {
    clean = false;
    const std::uint64_t pos = head();
    if (pos % mp::detail::frame_align != 0 && positions == 0) fail("head is not 8-aligned");
    if (pos + sizeof(mp::detail::FrameHeader) - tail() > arena.cap) return;  // no room: a writer would wait
    const std::size_t idx = static_cast<std::size_t>(pos & (arena.cap - 1));
    if (idx + sizeof(mp::detail::FrameHeader) > arena.cap) return;           // (forged positions only)
    const auto type = static_cast<FrameType>(in.ConsumeIntegralInRange<std::uint8_t>(0, 7));
    std::uint32_t len;
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0: len = static_cast<std::uint32_t>(arena.cap - idx - sizeof(mp::detail::FrameHeader)); break;  // to the end
      case 1: len = in.ConsumeIntegral<std::uint32_t>(); break;
      default: len = in.ConsumeIntegralInRange<std::uint32_t>(0, static_cast<std::uint32_t>(arena.cap)); break;
    }
    mp::detail::FrameHeader fh = mp::detail::make_frame(len, type, pos);
    if (in.ConsumeBool()) fh.tag ^= in.ConsumeIntegral<std::uint32_t>();  // a wrong check or type
    // Payload: clipped to the data area and to the free space (this producer
    // writes garbage, but not over unconsumed frames: corrupt() does that).
    const std::size_t room = static_cast<std::size_t>(
        std::min<std::uint64_t>(arena.cap - idx - sizeof fh, arena.cap - (pos + sizeof fh - tail())));
    std::byte* at = arena.data() + idx;
    std::memcpy(at, &fh, sizeof fh);
    const std::vector<std::uint8_t> payload =
        in.ConsumeBytes<std::uint8_t>(std::min<std::size_t>({len, room, in.ConsumeIntegralInRange<std::size_t>(0, 64)}));
    if (!payload.empty()) std::memcpy(at + sizeof fh, payload.data(), payload.size());
    // A FIRST's payload starts with the total it announces, any u64: the
    // header check does not cover it, so the reader must not trust it.
    // Publish the frame (or, sometimes, a head that covers only part of it,
    // so that later frames overlap it).
    std::uint64_t next = pos + mp::detail::frame_bytes(len);
    if (in.ConsumeBool()) next = pos + mp::detail::frame_align * in.ConsumeIntegralInRange<std::uint64_t>(1, 8);
    if (next - tail() > arena.cap) next = tail() + arena.cap;
    auto* h = arena.header();
    h->head.store(next, std::memory_order_release);
    if (type == FrameType::whole || type == FrameType::last) h->written.fetch_add(1, std::memory_order_release);
    total_published += next - pos;
  }

  void corrupt() {
    clean = false;
    const auto i = in.ConsumeIntegralInRange<std::size_t>(0, arena.cap - 1);
    arena.data()[i] ^= static_cast<std::byte>(in.ConsumeIntegralInRange<std::uint8_t>(1, 255));
  }

  void forge_positions() {
    clean = false;
    auto* h = arena.header();
    std::uint64_t v = in.ConsumeIntegral<std::uint64_t>();
    if (positions == 2) v &= ~std::uint64_t{mp::detail::frame_align - 1};
    if (in.ConsumeBool()) h->head.store(v);
    else h->tail.store(v);
  }

  /// One consumer call; returns whether it consumed or delivered anything.
  bool receive(int how) {
    const bool throw_in_callback = in.ConsumeIntegralInRange<int>(0, 7) == 0;
    auto on_msg = [&](std::span<const std::byte> m) {
      if (positions == 0 && m.size() > total_published) fail("delivered more bytes than were ever published");
      received.emplace_back(m.begin(), m.end());
      if (throw_in_callback) throw std::runtime_error("consumer callback failed");
    };
    const std::uint64_t t0 = tail();
    try {
      switch (how) {
        case 0: consumer.recv(on_msg, Clock::now()); break;
        case 1: consumer.recv_batch(on_msg, in.ConsumeIntegralInRange<std::size_t>(1, 16), Clock::now()); break;
        default: consumer.try_recv_batch(on_msg, in.ConsumeIntegralInRange<std::size_t>(1, 16)); break;
      }
    } catch (const mp::DecodeError&) {
      if (clean) fail("DecodeError although only the real producer wrote");
    } catch (const std::runtime_error& e) {
      if (std::strcmp(e.what(), "consumer callback failed") != 0) throw;
    }
    check_positions();
    return tail() != t0;
  }

  void run() {
    for (int ops = 0; ops < 200 && in.remaining_bytes() > 0; ++ops) {
      switch (in.ConsumeIntegralInRange<int>(0, positions != 0 ? 9 : 8)) {
        case 0: case 1: send(); break;
        case 2: raw_frame(); break;
        case 3: corrupt(); break;
        case 4: receive(0); break;
        case 5: receive(1); break;
        case 6: receive(2); break;
        case 7: consumer.drop_partial(); break;
        case 8: send(); receive(0); break;
        default: forge_positions(); break;
      }
    }
    drain();
    if (clean) verify();
  }

  /// Reads until nothing is left. Every call that does not time out moves
  /// tail by at least one 8-byte frame (and at most to head, which is at most
  /// a ring ahead, or the reader declares the control block corrupt), so a
  /// bound of (bytes/8 + slack) calls catches a consumer that loops without
  /// consuming, also with forged positions.
  void drain() {
    const std::uint64_t bound = arena.cap / mp::detail::frame_align + 8;
    for (std::uint64_t i = 0;; ++i) {
      if (i > bound) fail("the consumer does not make progress");
      const std::uint64_t t0 = tail();
      bool delivered = false;
      try {
        delivered = consumer.recv([&](std::span<const std::byte> m) { received.emplace_back(m.begin(), m.end()); },
                                  Clock::now());
      } catch (const mp::DecodeError& e) {
        if (clean) fail("DecodeError although only the real producer wrote");
        if (tail() != t0) continue;
        // Nothing consumed: allowed only for a control block declared corrupt.
        if (positions == 0 || positions_sane()) {
          std::fprintf(stderr, "fuzz_ring: head %llu, tail %llu: %s\n", static_cast<unsigned long long>(head()),
                       static_cast<unsigned long long>(tail()), e.what());
          fail("DecodeError without progress although head/tail are sane");
        }
        break;
      }
      check_positions();
      if (!delivered && tail() == t0) break;
    }
  }

  void verify() {
    if (received.size() != sent.size()) fail("real messages were lost or duplicated");
    for (std::size_t i = 0; i < sent.size(); ++i)
      if (received[i] != sent[i]) fail("a real message arrived changed or out of order");
    if (consumer.pending() != 0) fail("messages still pending after the drain");
    if (producer.sent() != consumer.received()) fail("sent() != received() after the drain");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const int positions = [] {
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    const char* e = std::getenv("MP_FUZZ_RING_POSITIONS");
    return e == nullptr ? 0 : e[0] == '1' ? 1 : e[0] == '2' ? 2 : 0;
  }();
  FuzzedDataProvider in(data, size);
  const std::size_t cap = Ring::min_capacity << in.ConsumeIntegralInRange<int>(0, 4);  // 256 B .. 4 KiB
  const bool bell = in.ConsumeBool();
  const std::uint64_t start = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<std::uint64_t>(0, std::uint64_t{1} << 40) * 8;
  Arena arena(cap);
  if (bell) std::launder(reinterpret_cast<Doorbell*>(arena.base + Arena::bell_off))->init();
  SpscChannel::create(arena.base, Arena::ring_off, cap, bell ? Arena::bell_off : 0);
  // Start at an arbitrary (aligned) position, as after a long run.
  auto* h = arena.header();
  h->head.store(start);
  h->tail.store(start);
  h->w_commit_head.store(start);
  h->r_commit_tail.store(start);
  Script s(in, arena, positions);
  s.run();
  return 0;
}
