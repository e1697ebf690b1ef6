// examples/word_count.cpp - a word count over real text files: map over the
// paths, then merge the per-file counts.
//
// Each task reads one file and returns its own std::map of word -> count (a
// result travels back by value); the parent merges the maps. Only the paths
// are sent to the workers, not the text. The merged count is checked against
// a serial count of the same files.
//
//   build/dev/examples/word_count [directory]    (default /usr/share/common-licenses)
#include <mp/pool.hpp>

#include "example_check.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

using Counts = std::map<std::string, long>;

/// The words of one file (runs of letters, lower-cased) and how often each
/// occurs. Throws std::runtime_error if the file cannot be read: the error
/// comes back to the parent as the same type.
Counts count_words(std::string path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  Counts counts;
  std::string word;
  for (char c; in.get(c);) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      ++counts[word];
      word.clear();
    }
  }
  if (!word.empty()) ++counts[word];
  return counts;
}

void merge_into(Counts& total, const Counts& part) {
  for (const auto& [word, n] : part) total[word] += n;
}

/// The regular files directly in dir (symbolic links left out, so each text
/// counts once), sorted.
std::vector<std::string> text_files(const std::filesystem::path& dir) {
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file() && !entry.is_symlink()) paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());
  return paths;
}

int main(int argc, char** argv) {
  example::Checks check;
  const std::filesystem::path dir = argc > 1 ? argv[1] : "/usr/share/common-licenses";
  const std::vector<std::string> paths = text_files(dir);
  check(!paths.empty(), "the directory holds text files");
  mp::Pool pool;

  example::Stopwatch t_parallel;
  Counts total;
  for (const Counts& part : pool.map(count_words, paths, 1)) merge_into(total, part);
  const double parallel_ms = t_parallel.ms();

  example::Stopwatch t_serial;
  Counts serial;
  for (const std::string& p : paths) merge_into(serial, count_words(p));
  const double serial_ms = t_serial.ms();

  long words = 0;
  std::vector<std::pair<long, std::string>> by_count;
  for (const auto& [word, n] : total) {
    words += n;
    by_count.emplace_back(n, word);
  }
  std::sort(by_count.rbegin(), by_count.rend());
  std::printf("%zu files in %s: %ld words, %zu distinct\n", paths.size(), dir.c_str(), words, total.size());
  std::printf("most frequent:");
  for (std::size_t i = 0; i < 8 && i < by_count.size(); ++i)
    std::printf(" %s %ld%s", by_count[i].second.c_str(), by_count[i].first, i + 1 < 8 ? "," : "\n");
  std::printf("map over paths + merge %.2f ms, serial %.2f ms (%u workers)\n", parallel_ms, serial_ms, pool.size());
  check(total == serial, "the merged counts equal the serial count");
  try {
    pool.apply(count_words, (dir / "no such file").string());
    check(false, "a missing file throws");
  } catch (const std::runtime_error& e) {
    std::printf("a missing file: std::runtime_error: %s\n", e.what());
  }
  return check.finish("word_count");
}
