#include "common/util/file.h"

#include <fstream>
#include <sstream>

#include "common/util/error.h"

namespace sotto::util {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace sotto::util
