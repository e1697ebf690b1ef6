// mp/detail/spawner_link.hpp - the parent's end of a spawner (spawner.hpp):
// its pid and control socket, the commands sent on it, the standby it
// answers with, and how it ended. Every spawner is a child of the pool's
// process, so the parent reaps each one.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mp/detail/spawner.hpp>
#include <mp/detail/syscall.hpp>

namespace mp::detail {

/// How long the parent waits for a spawner's answer to new_standby or
/// take_over (it answers at once unless it is dying).
inline constexpr int spawner_answer_ms = 5000;

/// The parent's end of one spawner. Used under the backend's lock, except
/// reap().
class SpawnerLink {
public:
  SpawnerLink() = default;
  SpawnerLink(pid_t pid, int sock) noexcept : pid_(pid), sock_(sock) {}

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool open() const noexcept { return sock_ >= 0; }

  /// Sends one command. Throws std::system_error naming the call; a gone
  /// spawner gives EPIPE, never SIGPIPE.
  void send(std::uint32_t cmd) const {
    const ssize_t n = retry_eintr([&] { return ::send(sock_, &cmd, sizeof cmd, MSG_NOSIGNAL); });
    if (n != static_cast<ssize_t>(sizeof cmd)) throw_system_error("send(spawner socket)");
  }

  /// Sends op (new_standby or take_over) and returns the standby the
  /// spawner made, or a closed link when it could not (then `why` says
  /// why). Blocks up to spawner_answer_ms.
  SpawnerLink ask_for_standby(SpawnerOp op, std::string& why) const {
    try {
      send(spawner_command(op));
    } catch (const std::exception& e) {
      why = e.what();
      return {};
    }
    pollfd p{sock_, POLLIN, 0};
    if (retry_eintr([&] { return ::poll(&p, 1, spawner_answer_ms); }) <= 0) {
      why = "it did not answer";
      return {};
    }
    SpawnerReply rep;
    iovec iov{&rep, sizeof rep};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof ctl;
    const ssize_t n = retry_eintr([&] { return ::recvmsg(sock_, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL); });
    const cmsghdr* c = n == static_cast<ssize_t>(sizeof rep) ? CMSG_FIRSTHDR(&msg) : nullptr;
    if (c == nullptr || c->cmsg_type != SCM_RIGHTS || rep.pid <= 0) {
      why = n != static_cast<ssize_t>(sizeof rep) ? "it closed its control socket"
                                                   : std::string("it could not fork: ") + std::strerror(rep.err);
      return {};
    }
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    register_pool_fd(fd);
    return SpawnerLink(rep.pid, fd);
  }

  /// Whether the spawner has ended (it is a zombie now; reap() reaps it).
  /// Never blocks.
  [[nodiscard]] bool exited() const noexcept {
    if (pid_ <= 0) return false;
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_;
  }

  /// How the spawner ended ("killed by SIGKILL", "exited with status 1"),
  /// once it ended. Leaves it to reap(); waits at most ~1 s for it to end.
  [[nodiscard]] std::string how_it_ended() const {
    siginfo_t info{};
    for (int i = 0; i < 1000; ++i) {
      info.si_pid = 0;
      if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno != EINTR)
        break;
      if (info.si_pid == pid_) {
        if (info.si_code == CLD_EXITED) return "exited with status " + std::to_string(info.si_status);
        return "killed by " + signal_name(info.si_status);
      }
      ::usleep(1000);
    }
    return "closed its control socket";
  }

  /// Waits for the spawner to exit and reaps it. Blocks.
  void reap() noexcept {
    int st = 0;
    if (pid_ > 0) {
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
    pid_ = -1;
  }

  /// Closes the parent's end (a standby then exits).
  void close() noexcept {
    if (sock_ < 0) return;
    unregister_pool_fd(sock_);
    ::close(sock_);
    sock_ = -1;
  }

private:
  pid_t pid_ = -1;
  int sock_ = -1;
};

/// What a worker's wait status means, as a sentence; `after` ends it.
inline std::string describe_exit(pid_t pid, int status, const std::string& after = " while running this task") {
  std::string who = "mp::Pool worker " + std::to_string(pid);
  if (WIFSIGNALED(status)) return who + " was killed by " + signal_name(WTERMSIG(status)) + after;
  if (WIFEXITED(status)) return who + " exited with status " + std::to_string(WEXITSTATUS(status)) + after;
  return who + " was lost" + after;
}

}  // namespace mp::detail
