// TomlReader: typed, validated access to a TOML config file (toml++), for every Sotto binary.
//
// Keys are dotted paths ("server.port"). Each getter checks the type and range and throws sotto::Error naming the
// file, the key, what was found and what is allowed. The reader remembers which keys were asked for, so that
// reject_unknown_keys() can refuse a typo ("unknown key 'rounds.cohort_taget'") instead of silently ignoring it.
// Relative paths, given or default, resolve against the config file's directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sotto::config {

class TomlReader {
 public:
  // Parses a file; a syntax error names the file, line and column.
  static TomlReader from_file(const std::filesystem::path& path);
  // Parses text (for tests); `source` names it in errors.
  static TomlReader from_string(const std::string& text, const std::string& source = "<config>");
  TomlReader(TomlReader&&) noexcept;
  TomlReader& operator=(TomlReader&&) noexcept;
  ~TomlReader();

  bool has(const std::string& key) const;
  // The key is there and holds a string (for a key that takes a boolean or a word).
  bool is_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::optional<std::string>& fallback = std::nullopt);
  // One of `allowed`; the error lists them.
  std::string get_choice(const std::string& key, const std::vector<std::string>& allowed, const std::string& fallback);
  // An array of strings, each one of `allowed` (absent: empty); the error lists them.
  std::vector<std::string> get_choices(const std::string& key, const std::vector<std::string>& allowed);
  std::int64_t get_int(const std::string& key, std::optional<std::int64_t> fallback, std::int64_t min,
                       std::int64_t max);
  double get_double(const std::string& key, std::optional<double> fallback, double min, double max);
  // A duration given in seconds (integer or fractional), as milliseconds.
  std::chrono::milliseconds get_seconds(const std::string& key, double fallback, double min, double max);
  bool get_bool(const std::string& key, std::optional<bool> fallback);
  std::vector<std::string> get_strings(const std::string& key);
  // A table of string values (name = "value", ...), in key order; empty when absent.
  std::map<std::string, std::string> get_string_map(const std::string& key);
  // A path; relative ones (given or fallback) resolve against the config file's directory. No fallback = required.
  std::filesystem::path get_path(const std::string& key, const std::optional<std::filesystem::path>& fallback);

  // Throws for the first key present in the file that no getter asked for.
  void reject_unknown_keys() const;
  // "FILE: key 'K' ..." prefix, for validation errors raised by the caller.
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;
  const std::string& source() const;

 private:
  struct Impl;
  explicit TomlReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sotto::config
