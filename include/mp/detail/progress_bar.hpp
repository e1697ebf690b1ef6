// mp/detail/progress_bar.hpp - the text of mp::progress()'s bar, tqdm's
// layout:
//
//    45%|#########           | 450/1000 [00:02<00:03, 210.50 it/s]
//   450 it [00:02, 210.50 it/s]                  (total unknown)
//
// and its one write to stderr (a whole line per write(2), so a line is
// never torn by another writer's bytes).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <string>
#include <unistd.h>

#include <mp/detail/compiled.hpp>

namespace mp::detail {

/// "mm:ss", or "h:mm:ss" past an hour.
MP_COMPILED std::string clock_text(double seconds);
/// One state of the bar: `done` of `total` (0: unknown) after `seconds`.
MP_COMPILED std::string bar_text(std::size_t done, std::size_t total, double seconds);
/// Writes "\r" + text (+ "\n" when final) to stderr in one write(2),
/// clearing what a longer earlier line left. Errors are ignored: a bar
/// must never fail the map it reports on.
MP_COMPILED void draw_bar(const std::string& text, std::size_t& last_len, bool final);

#if MP_DEFINE_COMPILED

MP_COMPILED std::string clock_text(double seconds) {
  if (!(seconds >= 0) || seconds > 360000) return "?";
  const auto s = static_cast<long>(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

MP_COMPILED std::string bar_text(std::size_t done, std::size_t total, double seconds) {
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  char rate_buf[48];
  std::snprintf(rate_buf, sizeof rate_buf, "%.2f it/s", rate);
  if (total == 0) return std::to_string(done) + " it [" + clock_text(seconds) + ", " + rate_buf + "]";
  constexpr std::size_t width = 20;
  const double frac = static_cast<double>(done) / static_cast<double>(total);
  const auto filled = static_cast<std::size_t>(frac * width);
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : -1.0;
  char pct[8];
  std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(frac * 100));
  return std::string(pct) + "|" + std::string(filled, '#') + std::string(width - filled, ' ') + "| " +
         std::to_string(done) + "/" + std::to_string(total) + " [" + clock_text(seconds) + "<" + clock_text(eta) +
         ", " + rate_buf + "]";
}

MP_COMPILED void draw_bar(const std::string& text, std::size_t& last_len, bool final) {
  std::string line = "\r" + text;
  if (text.size() < last_len) line.append(last_len - text.size(), ' ');
  last_len = text.size();
  if (final) line += '\n';
  std::size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}
#endif  // MP_DEFINE_COMPILED

}  // namespace mp::detail
