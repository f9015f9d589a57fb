#include "common/util/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <iostream>
#include <thread>

#include "common/util/error.h"
#include "common/util/file.h"

namespace sotto::util {

namespace {

using SteadyClock = std::chrono::steady_clock;

}  // namespace

Process::Process(std::string name, std::vector<std::string> argv, fs::path log_file)
    : name_(std::move(name)), log_file_(std::move(log_file)) {
  if (argv.empty()) throw Error("Process " + name_ + ": empty argv");
  if (log_file_.has_parent_path()) fs::create_directories(log_file_.parent_path());
  // Everything the child needs is prepared before fork: between fork and exec only async-signal-safe calls.
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const std::string log_path = log_file_.string();
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) throw Error("fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    // The child dies with the test process, even when that one is killed (ctest timeout).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log_fd < 0) ::_exit(125);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(args[0], args.data());
    const char message[] = "test_support: execv failed\n";
    [[maybe_unused]] auto ignored = ::write(2, message, sizeof message - 1);
    ::_exit(127);
  }
  pid_ = pid;
}

Process::~Process() {
  if (std::uncaught_exceptions() > 0) {
    std::string text;
    try {
      text = log_tail(6000);
    } catch (...) {
    }
    std::cerr << "---- " << name_ << " (pid " << pid_ << ", " << log_file_.string() << ") ----\n"
              << text << "---- end of " << name_ << " ----\n";
  }
  if (!exit_code_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

std::string Process::log_tail(std::size_t max_chars) const {
  std::string text = log_text();
  if (text.size() > max_chars) text = "..." + text.substr(text.size() - max_chars);
  return text;
}

std::string Process::log_text() const {
  std::error_code ec;
  if (!fs::exists(log_file_, ec)) return {};
  return read_file(log_file_);
}

void Process::kill(int signal) {
  if (!exit_code_ && pid_ > 0) ::kill(pid_, signal);
}

bool Process::reap(bool block) {
  if (exit_code_) return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return false;
  if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_code_ = 128 + WTERMSIG(status);
  } else {
    exit_code_ = 255;
  }
  return true;
}

bool Process::running() { return !reap(false); }

std::optional<int> Process::wait_for_exit(Seconds timeout) {
  const auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(timeout);
  while (!reap(false)) {
    if (SteadyClock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
  return exit_code_;
}

bool wait_until(const std::function<bool()>& predicate, Seconds timeout, Seconds poll) {
  const auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(timeout);
  for (;;) {
    if (predicate()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

std::uint16_t wait_for_port(const fs::path& state_dir, Seconds timeout, Process* process) {
  const fs::path file = state_dir / "port";
  std::uint16_t port = 0;
  bool exited = false;
  const bool ok = wait_until(
      [&] {
        std::error_code ec;
        if (fs::exists(file, ec)) {
          const std::string text = read_file(file);
          if (!text.empty() && text.back() == '\n') {
            port = static_cast<std::uint16_t>(std::stoul(text));
            return port != 0;
          }
        }
        if (process && !process->running()) {
          exited = true;
          return true;
        }
        return false;
      },
      timeout);
  if (exited || !ok) {
    std::string why = exited ? "the aggregator exited with code " + std::to_string(process->exit_code().value_or(-1))
                             : "timed out waiting for " + file.string();
    if (process) why += "; its log:\n" + process->log_text();
    throw Error(why);
  }
  return port;
}

}  // namespace sotto::util
