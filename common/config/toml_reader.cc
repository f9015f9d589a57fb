#include "common/config/toml_reader.h"

#include <algorithm>

#include <toml++/toml.h>
#include <limits>
#include <sstream>

#include "common/util/error.h"

namespace sotto::config {

struct TomlReader::Impl {
  toml::table table;
  std::string source;
  std::filesystem::path base_dir;
  std::set<std::string> asked;

  toml::node_view<const toml::node> at(const std::string& key) const {
    return toml::node_view<const toml::node>(table.at_path(key).node());
  }
  const toml::node* node(const std::string& key) {
    asked.insert(key);
    return table.at_path(key).node();
  }
};

namespace {

std::string type_name(const toml::node& n) {
  std::ostringstream s;
  s << n.type();
  return s.str();
}

void collect_keys(const toml::table& table, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& [k, v] : table) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = v.as_table()) {
      collect_keys(*sub, key, out);
    } else {
      out.push_back(key);
    }
  }
}

}  // namespace

TomlReader::TomlReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TomlReader::TomlReader(TomlReader&&) noexcept = default;
TomlReader& TomlReader::operator=(TomlReader&&) noexcept = default;
TomlReader::~TomlReader() = default;

TomlReader TomlReader::from_file(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->source = path.string();
  impl->base_dir = std::filesystem::absolute(path).parent_path();
  if (!std::filesystem::exists(path)) throw Error("config file " + path.string() + " does not exist");
  try {
    impl->table = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    std::ostringstream s;
    s << path.string() << ":" << e.source().begin.line << ":" << e.source().begin.column
      << ": invalid TOML: " << e.description();
    throw Error(s.str());
  }
  return TomlReader(std::move(impl));
}

TomlReader TomlReader::from_string(const std::string& text, const std::string& source) {
  auto impl = std::make_unique<Impl>();
  impl->source = source;
  impl->base_dir = std::filesystem::current_path();
  try {
    impl->table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream s;
    s << source << ":" << e.source().begin.line << ":" << e.source().begin.column
      << ": invalid TOML: " << e.description();
    throw Error(s.str());
  }
  return TomlReader(std::move(impl));
}

const std::string& TomlReader::source() const {
  return impl_->source;
}

void TomlReader::fail(const std::string& key, const std::string& problem) const {
  throw Error(impl_->source + ": key '" + key + "' " + problem);
}

bool TomlReader::has(const std::string& key) const {
  return impl_->table.at_path(key).node() != nullptr;
}

bool TomlReader::is_string(const std::string& key) const {
  const toml::node* n = impl_->table.at_path(key).node();
  return n != nullptr && n->is_string();
}

std::string TomlReader::get_string(const std::string& key, const std::optional<std::string>& fallback) {
  const toml::node* n = impl_->node(key);
  if (!n) {
    if (!fallback) fail(key, "is required (a string)");
    return *fallback;
  }
  if (!n->is_string()) fail(key, "must be a string, found " + type_name(*n));
  return std::string(n->as_string()->get());
}

namespace {

bool is_one_of(const std::string& value, const std::vector<std::string>& allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

std::string quoted_list(const std::vector<std::string>& allowed) {
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + ("\"" + a + "\"");
  return list;
}

}  // namespace

std::string TomlReader::get_choice(const std::string& key, const std::vector<std::string>& allowed,
                                   const std::string& fallback) {
  std::string value = get_string(key, fallback);
  if (!is_one_of(value, allowed)) fail(key, "is \"" + value + "\"; allowed: " + quoted_list(allowed));
  return value;
}

std::vector<std::string> TomlReader::get_choices(const std::string& key, const std::vector<std::string>& allowed) {
  std::vector<std::string> values = get_strings(key);
  for (const auto& value : values) {
    if (!is_one_of(value, allowed)) fail(key, "names \"" + value + "\"; allowed: " + quoted_list(allowed));
  }
  return values;
}

std::int64_t TomlReader::get_int(const std::string& key, std::optional<std::int64_t> fallback, std::int64_t min,
                                 std::int64_t max) {
  const toml::node* n = impl_->node(key);
  std::int64_t value = 0;
  if (!n) {
    if (!fallback) fail(key, "is required (an integer)");
    value = *fallback;
  } else if (!n->is_integer()) {
    fail(key, "must be an integer, found " + type_name(*n));
  } else {
    value = n->as_integer()->get();
  }
  if (value < min || value > max) {
    fail(key,
         "is " + std::to_string(value) + "; it must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return value;
}

double TomlReader::get_double(const std::string& key, std::optional<double> fallback, double min, double max) {
  const toml::node* n = impl_->node(key);
  double value = 0;
  if (!n) {
    if (!fallback) fail(key, "is required (a number)");
    value = *fallback;
  } else if (n->is_floating_point()) {
    value = n->as_floating_point()->get();
  } else if (n->is_integer()) {
    value = static_cast<double>(n->as_integer()->get());
  } else {
    fail(key, "must be a number, found " + type_name(*n));
  }
  if (!(value >= min && value <= max)) {
    std::ostringstream s;
    s << "is " << value << "; it must be between " << min << " and " << max;
    fail(key, s.str());
  }
  return value;
}

std::chrono::milliseconds TomlReader::get_seconds(const std::string& key, double fallback, double min, double max) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(get_double(key, fallback, min, max) * 1000.0));
}

bool TomlReader::get_bool(const std::string& key, std::optional<bool> fallback) {
  const toml::node* n = impl_->node(key);
  if (!n) {
    if (!fallback) fail(key, "is required (true or false)");
    return *fallback;
  }
  if (!n->is_boolean()) fail(key, "must be true or false, found " + type_name(*n));
  return n->as_boolean()->get();
}

std::vector<std::string> TomlReader::get_strings(const std::string& key) {
  const toml::node* n = impl_->node(key);
  std::vector<std::string> out;
  if (!n) return out;
  const auto* arr = n->as_array();
  if (!arr) fail(key, "must be an array of strings, found " + type_name(*n));
  for (const auto& item : *arr) {
    if (!item.is_string()) fail(key, "must be an array of strings; an element is " + type_name(item));
    out.emplace_back(item.as_string()->get());
  }
  return out;
}

std::map<std::string, std::string> TomlReader::get_string_map(const std::string& key) {
  const toml::node* n = impl_->node(key);
  std::map<std::string, std::string> out;
  if (!n) return out;
  const auto* table = n->as_table();
  if (!table) fail(key, "must be a table of name = \"value\" lines, found " + type_name(*n));
  for (const auto& [k, v] : *table) {
    const std::string name(k.str());
    impl_->asked.insert(key + "." + name);
    if (!v.is_string()) fail(key + "." + name, "must be a string, found " + type_name(v));
    out.emplace(name, v.as_string()->get());
  }
  return out;
}

std::filesystem::path TomlReader::get_path(const std::string& key,
                                           const std::optional<std::filesystem::path>& fallback) {
  std::optional<std::string> fb;
  if (fallback) fb = fallback->string();
  std::filesystem::path p = get_string(key, fb);
  if (p.empty()) return p;
  if (p.is_relative()) p = impl_->base_dir / p;
  return p.lexically_normal();
}

void TomlReader::reject_unknown_keys() const {
  std::vector<std::string> keys;
  collect_keys(impl_->table, "", keys);
  for (const auto& k : keys) {
    if (!impl_->asked.count(k)) {
      throw Error(impl_->source + ": unknown key '" + k +
                  "'; check its spelling against the documented keys (README.md)");
    }
  }
}

}  // namespace sotto::config
