// The process's file-descriptor limit (RLIMIT_NOFILE): a server that promises to hold N connections needs N
// descriptors and some to spare, and the soft limit a shell hands out (often 1024) is usually below what the hard
// limit allows. raise_descriptor_limit lifts the soft limit to what is needed, or refuses with the numbers and the
// way out when the hard limit is too low.
#pragma once

#include <cstddef>
#include <string>

namespace sotto::util {

struct DescriptorLimit {
  std::size_t soft = 0;  // in force after the call
  std::size_t hard = 0;
};

DescriptorLimit descriptor_limit();

// Raises the soft limit to at least `needed` (0: as far as the hard limit allows). Throws sotto::Error when the
// hard limit is below `needed`; the message names `what_needs_it` (e.g. "server.max_connections = 4096").
DescriptorLimit raise_descriptor_limit(std::size_t needed, const std::string& what_needs_it);

}  // namespace sotto::util
