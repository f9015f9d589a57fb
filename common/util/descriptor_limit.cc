#include "common/util/descriptor_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "common/util/error.h"

namespace sotto::util {

namespace {

std::size_t as_count(rlim_t value) {
  return value == RLIM_INFINITY ? static_cast<std::size_t>(-1) : static_cast<std::size_t>(value);
}

}  // namespace

DescriptorLimit descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    throw Error(std::string("cannot read the file-descriptor limit (RLIMIT_NOFILE): ") + std::strerror(errno));
  }
  return {as_count(limit.rlim_cur), as_count(limit.rlim_max)};
}

DescriptorLimit raise_descriptor_limit(std::size_t needed, const std::string& what_needs_it) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    throw Error(std::string("cannot read the file-descriptor limit (RLIMIT_NOFILE): ") + std::strerror(errno));
  }
  if (needed != 0 && as_count(limit.rlim_max) < needed) {
    throw Error(what_needs_it + " needs " + std::to_string(needed) +
                " file descriptors, but this process may open at most " + std::to_string(as_count(limit.rlim_max)) +
                " (the hard RLIMIT_NOFILE): raise it (ulimit -Hn, or LimitNOFILE= in a systemd unit) or lower the "
                "setting");
  }
  const rlim_t target = needed == 0 ? limit.rlim_max : static_cast<rlim_t>(needed);
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= target) {
    return {as_count(limit.rlim_cur), as_count(limit.rlim_max)};
  }
  limit.rlim_cur = target;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    throw Error("cannot raise the file-descriptor limit to " + std::to_string(target) + " for " + what_needs_it +
                ": " + std::strerror(errno));
  }
  return {as_count(limit.rlim_cur), as_count(limit.rlim_max)};
}

}  // namespace sotto::util
