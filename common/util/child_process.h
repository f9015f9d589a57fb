// Child processes for the tools that run Sotto's binaries — sotto-sim's TLS transport and the integration tests:
// a program started with its stdout and stderr appended to a log file, waited for with timeouts, and killed and
// reaped when its handle goes away, so that no caller leaves processes behind. Also polling with a timeout, and
// the port file an aggregator started on port 0 writes into its state directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sotto::util {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Seconds = std::chrono::duration<double>;

// A child process (posix_spawn) with stdout and stderr both appended to a log file.
class Process {
 public:
  // argv[0] is the program path. `name` labels it in failure output. Throws sotto::Error if it cannot start.
  Process(std::string name, std::vector<std::string> argv, fs::path log_file);
  // Kills (SIGKILL) and reaps the child if it is still running. When the scope is left by an exception (a failed
  // REQUIRE), the tail of the log is printed to stderr first.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  const fs::path& log_file() const { return log_file_; }
  std::string log_text() const;
  // At most the last `max_chars` characters of the log, marked with "..." when cut.
  std::string log_tail(std::size_t max_chars) const;
  bool log_contains(const std::string& needle) const { return log_text().find(needle) != std::string::npos; }

  // Sends a signal (no-op once the child has been reaped).
  void kill(int signal);
  // Non-blocking: true while the child has not exited.
  bool running();
  // Waits up to `timeout` for the child to exit. Returns its exit code, or 128 + the signal number when a signal
  // ended it (as a shell reports it); nullopt on timeout (the child keeps running).
  std::optional<int> wait_for_exit(Seconds timeout);
  // The exit code once known (see wait_for_exit).
  std::optional<int> exit_code() const { return exit_code_; }

 private:
  bool reap(bool block);

  std::string name_;
  fs::path log_file_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Polls `predicate` every `poll` until it returns true (then true) or `timeout` elapses (then false).
bool wait_until(const std::function<bool()>& predicate, Seconds timeout, Seconds poll = 20ms);

// Waits for <state_dir>/port (written by an aggregator started with port 0) and returns the port; throws
// sotto::Error on timeout, or early when `process` (if given) exits first, quoting its log.
std::uint16_t wait_for_port(const fs::path& state_dir, Seconds timeout = 30s, Process* process = nullptr);

}  // namespace sotto::util
