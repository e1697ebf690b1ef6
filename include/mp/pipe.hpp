// mp/pipe.hpp - mp::Pipe<T>(): two connected ends that send and receive
// values of T (Python's multiprocessing.Pipe and its Connection objects).
//
//   auto [parent_end, child_end] = mp::Pipe<std::string>();
//   mp::Process p([](mp::Connection<std::string> c) { c.send(c.recv() + "!"); },
//                 std::move(child_end));    // start() closes the parent's copy
//   p.start();
//   parent_end.send("hi");
//   parent_end.recv();                        // "hi!"
//
// Each end is a socket of an AF_UNIX stream socketpair; a message is a u64
// length followed by the value encoded with mp's codec (mp::dumps). The
// kernel tells a reader when every copy of the other end is closed, so recv()
// then throws mp::ClosedError instead of waiting for ever, and send() to a
// closed peer throws mp::ClosedError (no SIGPIPE).
//
// As in Python, an end stays open in every process that holds a copy of it
// (fork copies them all): close the ends a process does not use, or the
// reader never sees the end of the stream. Moving an end into an mp::Process
// closes the parent's copy at start(); in the child, close() the parent's end
// if it inherited it.
//
// An end may be used by several threads of one process (sends and receives
// are each serialized); two processes must not send on (or receive from) the
// same end at once, since large messages would interleave. Use mp::Queue for
// many producers or consumers.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <poll.h>
#include <span>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <mp/codec.hpp>
#include <mp/detail/compiled.hpp>
#include <mp/detail/syscall.hpp>
#include <mp/errors.hpp>

namespace mp {
namespace detail {

/// Most bytes one message may declare; a larger length means a corrupt stream.
inline constexpr std::uint64_t pipe_max_message = std::uint64_t{1} << 40;

/// The state of one end, shared by nothing (an end is move-only).
struct PipeEnd {
  int fd = -1;
  bool readable = false;
  bool writable = false;
  std::mutex send_m;
  std::mutex recv_m;

  ~PipeEnd() {
    if (fd >= 0) ::close(fd);
  }

  [[noreturn]] static void closed(const char* what) {
    throw ClosedError(std::string("mp::Connection::") + what);
  }

  /// Writes all of buf; throws ClosedError if the peer is gone.
  void write_all(std::span<const std::byte> buf) const;

  /// Reads exactly buf.size() bytes. Returns false on EOF before the first
  /// byte; throws ClosedError on EOF inside.
  bool read_all(std::span<std::byte> buf, bool at_message_start) const;
};

#if MP_DEFINE_COMPILED

MP_COMPILED void PipeEnd::write_all(std::span<const std::byte> buf) const {
  while (!buf.empty()) {
    ssize_t n = ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
      closed("send(): the other end of the pipe is closed (every process holding it closed it or exited)");
    if (n < 0) throw_system_error("send");
    buf = buf.subspan(static_cast<std::size_t>(n));
  }
}

MP_COMPILED bool PipeEnd::read_all(std::span<std::byte> buf, bool at_message_start) const {
  std::size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::recv(fd, buf.data() + got, buf.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ECONNRESET) n = 0;
    if (n < 0) throw_system_error("recv");
    if (n == 0) {
      if (got == 0 && at_message_start) return false;
      closed("recv(): the other end of the pipe closed in the middle of a message");
    }
    got += static_cast<std::size_t>(n);
  }
  return true;
}

#endif  // MP_DEFINE_COMPILED

}  // namespace detail

/// One end of a Pipe. Move-only; the destructor closes it.
template <class T>
class Connection {
  static_assert(Sendable<T>,
                "mp::Pipe<T> / mp::Connection<T>: T cannot be encoded by mp's codec; give it a cereal-style "
                "serialize() member or specialise mp::codec<T> (see <mp/codec.hpp>).");

public:
  /// A closed end.
  Connection() = default;

  /// Takes ownership of a connected stream socket fd.
  Connection(int fd, bool readable, bool writable) : e_(std::make_unique<detail::PipeEnd>()) {
    e_->fd = fd;
    e_->readable = readable;
    e_->writable = writable;
  }

  /// Sends x: blocks while the peer's buffer is full. Throws mp::ClosedError
  /// if the other end is closed or this end was closed, std::logic_error on a
  /// receive-only end, what encoding throws. Thread-safe; see the header.
  void send(const T& x) {
    detail::PipeEnd& e = end("send");
    if (!e.writable) throw std::logic_error("mp::Connection::send(): this end of a one-way pipe only receives");
    std::uint64_t n = detail::encoded_size(x);
    std::vector<std::byte> buf(sizeof n + static_cast<std::size_t>(n));
    std::memcpy(buf.data(), &n, sizeof n);
    detail::encode_to(buf.data() + sizeof n, x);
    std::lock_guard g(e.send_m);
    e.write_all(buf);
  }

  /// Receives the next value: blocks until one arrives. Throws
  /// mp::ClosedError when the other end is closed and nothing is left (never
  /// hangs on a closed pipe), mp::DecodeError if the bytes are not a T,
  /// std::logic_error on a send-only end. Thread-safe; see the header.
  T recv() {
    detail::PipeEnd& e = end("recv");
    if (!e.readable) throw std::logic_error("mp::Connection::recv(): this end of a one-way pipe only sends");
    std::lock_guard g(e.recv_m);
    std::uint64_t n = 0;
    if (!e.read_all(std::as_writable_bytes(std::span(&n, 1)), true))
      detail::PipeEnd::closed(
          "recv(): the other end of the pipe is closed (every process holding it closed it or exited); "
          "no more messages can arrive");
    if (n > detail::pipe_max_message)
      throw DecodeError("mp::Connection::recv(): corrupt stream (a message claims " + std::to_string(n) + " bytes)");
    std::vector<std::byte> buf(static_cast<std::size_t>(n));
    e.read_all(buf, false);
    return loads<T>(std::span<const std::byte>(buf));
  }

  /// Whether recv() would not block now: a message (or the end of the
  /// stream) is waiting. Never blocks. Throws mp::ClosedError if this end was
  /// closed, std::logic_error on a send-only end. Thread-safe.
  bool poll() { return poll(std::chrono::seconds(0)); }

  /// Waits at most `timeout` for poll() to become true: blocks up to
  /// `timeout`. Throws mp::ClosedError if this end was closed,
  /// std::logic_error on a send-only end. Thread-safe.
  template <class Rep, class Period>
  bool poll(std::chrono::duration<Rep, Period> timeout) {
    detail::PipeEnd& e = end("poll");
    if (!e.readable) throw std::logic_error("mp::Connection::poll(): this end of a one-way pipe only sends");
    auto deadline = detail::deadline_after(timeout);
    for (;;) {
      pollfd p{e.fd, POLLIN, 0};
      auto left = deadline - detail::Clock::now();
      if (left < left.zero()) left = left.zero();
      if (deadline == detail::Clock::time_point::max()) left = std::chrono::hours(24);
      const timespec ts = detail::relative_timespec(left);
      int r = ::ppoll(&p, 1, &ts, nullptr);
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) detail::throw_system_error("ppoll");
      if (detail::Clock::now() >= deadline) return false;
    }
  }

  /// Closes this end (in this process). Idempotent; never blocks or throws.
  void close() noexcept { e_.reset(); }

  [[nodiscard]] bool closed() const noexcept { return !e_; }
  [[nodiscard]] bool readable() const noexcept { return e_ && e_->readable; }
  [[nodiscard]] bool writable() const noexcept { return e_ && e_->writable; }
  /// The socket's file descriptor (-1 when closed), e.g. for select/poll.
  [[nodiscard]] int fileno() const noexcept { return e_ ? e_->fd : -1; }

private:
  detail::PipeEnd& end(const char* what) {
    if (!e_) detail::PipeEnd::closed((std::string(what) + "(): this end of the pipe was closed").c_str());
    return *e_;
  }

  std::unique_ptr<detail::PipeEnd> e_;
};

/// Makes a connected pair of ends. duplex (the default): both ends send and
/// receive. duplex = false: the first end only receives, the second only
/// sends (as Python). Throws std::system_error if socketpair fails.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true) {
  int fds[2];
  detail::checked("socketpair", [&] { return ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); });
  if (!duplex) {
    ::shutdown(fds[0], SHUT_WR);
    ::shutdown(fds[1], SHUT_RD);
  }
  return {Connection<T>(fds[0], true, duplex), Connection<T>(fds[1], duplex, true)};
}

}  // namespace mp
