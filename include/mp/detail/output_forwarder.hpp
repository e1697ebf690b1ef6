// mp/detail/output_forwarder.hpp - workers' stdout and stderr, forwarded by
// their spawner line by line.
//
// Each worker's fds 1 and 2 are the write ends of two pipes the spawner makes
// just before it forks the worker; the spawner keeps the read ends, and its
// poll loop reads them. What a worker writes is collected per pipe and
// written to the spawner's own fd 1 or 2 (the pool's parent's, inherited
// when the pool was built) in whole lines only: several whole lines of one
// pipe go out in one write(2) of at most PIPE_BUF bytes, a longer line in a
// write of its own. So a line is never torn and lines of two workers never
// interleave within a line, however many writes a worker made of it.
//
// A line without its newline goes out when its pipe has been quiet for
// forward_idle_ms (a task that ended mid-line, a progress bar redrawn with
// '\r'), at end of file (the worker exited or was killed: everything it
// wrote before reaches the parent, and a newline ends its last line), or
// when it grows past forward_max_line.
// SIGPIPE is blocked in the spawner, so a parent whose stdout reader has
// gone loses the output, not the pool.
#pragma once

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstddef>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string>
#include <unistd.h>
#include <vector>

#include <mp/detail/syscall.hpp>

namespace mp::detail {

/// A partial line is forwarded after its pipe has been quiet this long (ms).
inline constexpr int forward_idle_ms = 100;
/// A line longer than this is forwarded in pieces of this size.
inline constexpr std::size_t forward_max_line = std::size_t{1} << 20;

/// Writes all of `n` bytes to fd (EINTR retried, EAGAIN waited out); drops
/// the rest on any other error (a closed reader).
inline void write_fully(int fd, const char* p, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      pollfd out{fd, POLLOUT, 0};
      (void)retry_eintr([&] { return ::poll(&out, 1, -1); });
      continue;
    }
    if (w <= 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

/// The spawner's side: the read ends of every live worker's pipes.
class OutputForwarder {
public:
  OutputForwarder() = default;
  OutputForwarder(const OutputForwarder&) = delete;
  OutputForwarder& operator=(const OutputForwarder&) = delete;

  /// Before forking a worker: makes its two pipes. On failure (no fds left)
  /// the worker keeps the spawner's fds 1 and 2, unforwarded.
  void open() noexcept {
    close_pending();
    for (int target = 1; target <= 2; ++target) {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) {
        close_pending();
        return;
      }
      streams_.push_back(Stream{p[0], target, {}, Clock::now()});
      pending_[target - 1] = p[1];
    }
  }

  /// In the new worker: its pipes become fds 1 and 2 (without close-on-exec);
  /// every other fd of the forwarder is closed.
  void become_worker() noexcept {
    const bool ok = pending_[0] >= 0 && pending_[1] >= 0;
    if (ok) {
      ::dup2(pending_[0], 1);
      ::dup2(pending_[1], 2);
    }
    close_pending();
    close_all();
  }

  /// In the spawner after the fork: only the worker writes to its pipes, so
  /// their end of file is its exit.
  void after_fork() noexcept { close_pending(); }

  /// In any other child of the spawner: drops every read end.
  void close_all() noexcept {
    for (Stream& s : streams_) ::close(s.fd);
    streams_.clear();
  }

  /// Appends a pollfd per pipe; returns the poll timeout to use (ms): short
  /// while a partial line waits, else `idle_ms`.
  int add_pollfds(std::vector<pollfd>& fds, int idle_ms) const {
    bool partial = false;
    for (const Stream& s : streams_) {
      fds.push_back(pollfd{s.fd, POLLIN, 0});
      partial = partial || !s.buf.empty();
    }
    return partial ? std::min(idle_ms, forward_idle_ms) : idle_ms;
  }

  /// After poll (also when it timed out): reads the pipes of `fds` (from
  /// add_pollfds, in order) it reported, forwards whole lines and the
  /// partial lines of pipes quiet for forward_idle_ms, and closes pipes at
  /// end of file.
  void on_ready(const pollfd* fds, std::size_t n) {
    const Clock::time_point now = Clock::now();
    for (std::size_t k = 0; k < n && k < streams_.size(); ++k) {
      Stream& s = streams_[k];
      if ((fds[k].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
        while (drain(s) == Read::more) {  // the worker is gone: read it all now, before later workers
        }
        s.eof = true;
      } else if (fds[k].revents != 0) {
        if (drain(s) == Read::eof) s.eof = true;
      } else if (!s.buf.empty() && now - s.last >= std::chrono::milliseconds(forward_idle_ms)) {
        flush_partial(s);
      }
    }
    std::erase_if(streams_, [](const Stream& s) { return s.eof; });
  }

  /// Before the spawner exits (its workers are reaped): forwards what is
  /// left in every pipe, partial lines included, and closes them.
  void finish() noexcept {
    for (Stream& s : streams_) {
      ::fcntl(s.fd, F_SETFL, O_NONBLOCK);  // a grandchild may still hold the write end
      Read r = Read::more;
      try {
        while (r == Read::more) r = drain(s);
        if (r != Read::eof) flush_partial(s);
      } catch (...) {
      }
      if (r != Read::eof) ::close(s.fd);
    }
    streams_.clear();
  }

private:
  struct Stream {
    int fd;
    int target;
    std::string buf;
    Clock::time_point last;  // of the last read
    bool eof = false;
  };

  enum class Read { more, empty, eof };

  /// One read; forwards the whole lines it completes. At end of file (or an
  /// error) forwards the partial line, ended with a newline so that the
  /// next worker's line does not continue it, and closes the fd.
  static Read drain(Stream& s) {
    char chunk[16384];
    const ssize_t n = retry_eintr([&] { return ::read(s.fd, chunk, sizeof chunk); });
    if (n < 0 && errno == EAGAIN) return Read::empty;
    if (n <= 0) {
      if (!s.buf.empty()) s.buf.push_back('\n');
      flush_partial(s);
      ::close(s.fd);
      return Read::eof;
    }
    s.last = Clock::now();
    s.buf.append(chunk, static_cast<std::size_t>(n));
    forward_lines(s);
    return Read::more;
  }

  /// Writes the buffer's whole lines: batches of lines up to PIPE_BUF bytes
  /// per write, a longer line alone.
  static void forward_lines(Stream& s) {
    std::size_t start = 0;
    std::size_t batch_end = 0;
    for (std::size_t nl; (nl = s.buf.find('\n', batch_end)) != std::string::npos;) {
      const std::size_t line_end = nl + 1;
      if (line_end - start > PIPE_BUF && batch_end > start) {
        write_fully(s.target, s.buf.data() + start, batch_end - start);
        start = batch_end;
      }
      batch_end = line_end;
    }
    if (batch_end > start) write_fully(s.target, s.buf.data() + start, batch_end - start);
    s.buf.erase(0, batch_end);
    if (s.buf.size() >= forward_max_line) flush_partial(s);
  }

  static void flush_partial(Stream& s) noexcept {
    write_fully(s.target, s.buf.data(), s.buf.size());
    s.buf.clear();
  }

  void close_pending() noexcept {
    for (int& fd : pending_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }

  std::vector<Stream> streams_;
  int pending_[2] = {-1, -1};
};

}  // namespace mp::detail
