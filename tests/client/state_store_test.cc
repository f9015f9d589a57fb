#include "client/state_store.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "common/crypto/random.h"
#include "common/util/atomic_file.h"
#include "common/util/file.h"
#include "tests/support/test_support.h"

using namespace sotto;
using client::StateStore;
namespace fs = std::filesystem;

namespace {

void overwrite(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Every file of `dir` and its bytes: what a refused operation must leave as it was.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename() != "lock") files[entry.path().filename()] = util::read_file(entry.path());
  }
  return files;
}

void restore(const fs::path& dir, const std::map<std::string, std::string>& files) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename() != "lock") fs::remove(entry.path());
  }
  for (const auto& [name, bytes] : files) overwrite(dir / name, bytes);
}

}  // namespace

TEST_CASE("state store: files round-trip sealed and each write takes the next generation") {
  test::TempDir dir;
  const auto key = crypto::random_secret<client::kStateKeyBytes>();
  {
    StateStore store(dir.path(), key);
    std::vector<std::uint64_t> seen;
    store.on_change([&](std::uint64_t g) { seen.push_back(g); });
    CHECK_FALSE(store.read("consent"));
    store.write("consent", "granted: training");
    store.write("ledger", std::string("line one\nline two\0binary", 25));
    store.write("consent", "revoked");
    CHECK(seen == std::vector<std::uint64_t>{1, 2, 3});
    CHECK(store.generation() == 3);
  }
  CHECK(util::read_file(dir / "consent.sealed").find("revoked") == std::string::npos);  // sealed, not plain
  CHECK((fs::status(dir / "consent.sealed").permissions() & fs::perms::group_all) == fs::perms::none);
  StateStore store(dir.path(), key, 3);
  CHECK(store.read("consent") == std::optional<std::string>("revoked"));
  CHECK(store.read("ledger")->size() == 25);
  CHECK(store.names() == std::vector<std::string>{"consent", "ledger"});
  store.remove("ledger");
  CHECK_FALSE(store.read("ledger"));
  CHECK_FALSE(fs::exists(dir / "ledger.sealed"));
  CHECK(store.generation() == 4);
  CHECK_THROWS_WITH(store.write("../escape", "x"), Catch::Contains("cannot name a state file"));
  CHECK_THROWS_WITH(store.write("manifest", "x"), Catch::Contains("cannot name a state file"));
}

TEST_CASE("state store: the change callback runs outside the store's lock, and may use and change the store") {
  test::TempDir dir;
  StateStore store(dir.path(), crypto::random_secret<client::kStateKeyBytes>());
  std::vector<std::uint64_t> told, seen_inside;
  bool copied = false;
  store.on_change([&](std::uint64_t g) {
    told.push_back(g);
    seen_inside.push_back(store.generation());  // under the old lock, this call never returned
    if (!copied) {
      copied = true;
      store.write("copy", *store.read("ledger"));
    }
  });
  store.write("ledger", "one");  // generation 1, and the callback's own write: generation 2
  CHECK(told == std::vector<std::uint64_t>{1, 2});
  CHECK(seen_inside == std::vector<std::uint64_t>{1, 2});
  CHECK(store.read("copy") == std::optional<std::string>("one"));
  store.remove("copy");
  CHECK(told.back() == 3);
  CHECK(store.generation() == 3);
  // A callback that replaces itself finishes running (it runs from a copy), and the new one is told the next change.
  int replaced = 0;
  store.on_change([&](std::uint64_t) { store.on_change([&](std::uint64_t) { ++replaced; }); });
  store.write("ledger", "two");
  store.write("ledger", "three");
  CHECK(replaced == 1);
}

TEST_CASE("state store: a wrong key or a tampered or renamed file is refused and nothing is changed") {
  test::TempDir dir;
  const auto key = crypto::random_secret<client::kStateKeyBytes>();
  {
    StateStore store(dir.path(), key);
    store.write("consent", "granted");
    store.write("ledger", "entries");
  }
  const auto before = snapshot(dir.path());
  CHECK_THROWS_WITH(StateStore(dir.path(), crypto::random_secret<client::kStateKeyBytes>()),
                    Catch::Contains("sealed under a different state key"));
  CHECK(snapshot(dir.path()) == before);

  SECTION("a flipped byte in a file") {
    std::string bytes = before.at("ledger.sealed");
    bytes[bytes.size() - 3] ^= 0x20;
    overwrite(dir / "ledger.sealed", bytes);
    StateStore store(dir.path(), key);
    CHECK_THROWS_WITH(store.read("ledger"), Catch::Contains("was altered or corrupted"));
    CHECK(util::read_file(dir / "ledger.sealed") == bytes);
    CHECK(store.read("consent") == std::optional<std::string>("granted"));
  }
  SECTION("a flipped byte in the manifest") {
    std::string bytes = before.at("manifest.sealed");
    bytes[30] ^= 1;
    overwrite(dir / "manifest.sealed", bytes);
    CHECK_THROWS_WITH(StateStore(dir.path(), key), Catch::Contains("was altered or corrupted"));
  }
  SECTION("a file copied over another's name") {
    overwrite(dir / "consent.sealed", before.at("ledger.sealed"));
    StateStore store(dir.path(), key);
    CHECK_THROWS_WITH(store.read("consent"), Catch::Contains("was altered or corrupted"));
  }
  SECTION("a truncated file") {
    overwrite(dir / "consent.sealed", before.at("consent.sealed").substr(0, 20));
    StateStore store(dir.path(), key);
    CHECK_THROWS_WITH(store.read("consent"), Catch::Contains("was altered or corrupted"));
  }
  SECTION("a file removed behind the store's back") {
    fs::remove(dir / "ledger.sealed");
    StateStore store(dir.path(), key);
    CHECK_THROWS_WITH(store.read("ledger"), Catch::Contains("is missing though the manifest records it"));
  }
}

TEST_CASE("state store: an old copy put back is refused and so is a whole directory put back") {
  test::TempDir dir;
  const auto key = crypto::random_secret<client::kStateKeyBytes>();
  std::map<std::string, std::string> granted;
  std::uint64_t latest = 0;
  {
    StateStore store(dir.path(), key);
    store.write("consent", "granted");
    store.write("ledger", "one entry");
    granted = snapshot(dir.path());
    store.write("consent", "revoked");
    store.write("ledger", "two entries");
    store.remove("ledger");
    latest = store.generation();
  }
  SECTION("one file") {
    overwrite(dir / "consent.sealed", granted.at("consent.sealed"));
    overwrite(dir / "ledger.sealed", granted.at("ledger.sealed"));
    StateStore store(dir.path(), key, latest);
    CHECK_THROWS_WITH(store.read("consent"), Catch::Contains("old copy put back") && Catch::Contains("latest is 3"));
    CHECK_THROWS_WITH(store.read("ledger"), Catch::Contains("old copy put back") &&
                                                Catch::Contains("deleted, its latest copy at generation 4"));
    CHECK(util::read_file(dir / "consent.sealed") == granted.at("consent.sealed"));  // refused, not deleted
    CHECK(util::read_file(dir / "ledger.sealed") == granted.at("ledger.sealed"));
  }
  SECTION("a file this store never had") {
    test::TempDir other_dir;
    {
      StateStore other(other_dir.path(), key);  // the same key, another directory
      other.write("extra", "from elsewhere");
    }
    fs::copy_file(other_dir / "extra.sealed", dir / "extra.sealed");
    StateStore store(dir.path(), key, latest);
    CHECK_THROWS_WITH(store.read("extra"), Catch::Contains("belongs to another state directory"));
  }
  SECTION("a file of another directory under the same key, at the very generation this one records") {
    test::TempDir other_dir;
    {
      StateStore other(other_dir.path(), key);
      for (int i = 0; i < 3; ++i) other.write("consent", "granted elsewhere");  // generation 3, as here
    }
    fs::copy_file(other_dir / "consent.sealed", dir / "consent.sealed", fs::copy_options::overwrite_existing);
    StateStore store(dir.path(), key, latest);
    CHECK_THROWS_WITH(store.read("consent"), Catch::Contains("belongs to another state directory"));
  }
  SECTION("the whole directory") {
    restore(dir.path(), granted);
    CHECK_THROWS_WITH(StateStore(dir.path(), key, latest),
                      Catch::Contains("put back to an older state") && Catch::Contains("the app's last is 5"));
    // Without the app's generation the old state opens: the README says so.
    CHECK(StateStore(dir.path(), key).read("consent") == std::optional<std::string>("granted"));
  }
  SECTION("the directory emptied") {
    restore(dir.path(), {});
    CHECK_THROWS_WITH(StateStore(dir.path(), key, latest), Catch::Contains("has no manifest"));
  }
}

TEST_CASE("state store: a crash between writing and renaming leaves the old file") {
  test::TempDir dir;
  const auto key = crypto::random_secret<client::kStateKeyBytes>();
  {
    StateStore store(dir.path(), key);
    store.write("consent", "granted");
  }
  const auto before = util::read_file(dir / "consent.sealed");
  {
    // What a crash before the rename leaves: a complete temporary beside the untouched file.
    util::StagedFile staged(dir / "consent.sealed", "new bytes", 0600);
    CHECK(util::read_file(dir / "consent.sealed") == before);
    CHECK(util::read_file(util::StagedFile::temporary_for(dir / "consent.sealed")) == "new bytes");
  }
  overwrite(util::StagedFile::temporary_for(dir / "consent.sealed"), "half a writ");  // a torn temporary
  StateStore store(dir.path(), key);
  CHECK(store.read("consent") == std::optional<std::string>("granted"));
  store.write("consent", "revoked");
  CHECK(store.read("consent") == std::optional<std::string>("revoked"));
  CHECK_FALSE(fs::exists(util::StagedFile::temporary_for(dir / "consent.sealed")));
}

TEST_CASE("state store: a crash between a change's file and its manifest is finished when the store next opens") {
  test::TempDir dir;
  const auto key = crypto::random_secret<client::kStateKeyBytes>();
  std::map<std::string, std::string> before;
  {
    StateStore store(dir.path(), key);
    store.write("consent", "granted");
    store.write("ledger", "one entry");
    before = snapshot(dir.path());
  }
  SECTION("a write whose manifest update was cut off is adopted") {
    {
      StateStore store(dir.path(), key);
      store.write("ledger", "two entries");
    }
    overwrite(dir / "manifest.sealed", before.at("manifest.sealed"));  // the file renamed in, the manifest not yet
    {
      StateStore store(dir.path(), key);
      CHECK(store.generation() == 3);
      CHECK(store.read("ledger") == std::optional<std::string>("two entries"));
      store.write("consent", "revoked");
      CHECK(store.generation() == 4);  // not a second generation 3
    }
    overwrite(dir / "ledger.sealed", before.at("ledger.sealed"));  // the copy from before the crash, put back
    StateStore store(dir.path(), key);
    CHECK_THROWS_WITH(store.read("ledger"), Catch::Contains("old copy put back") && Catch::Contains("latest is 3"));
  }
  SECTION("a removal whose unlink was cut off is finished") {
    {
      StateStore store(dir.path(), key);
      store.remove("ledger");
    }
    overwrite(dir / "ledger.sealed", before.at("ledger.sealed"));  // the manifest written, the file not yet gone
    StateStore store(dir.path(), key, 3);
    CHECK_FALSE(fs::exists(dir / "ledger.sealed"));
    CHECK(store.read("ledger") == std::nullopt);
    CHECK(store.read("consent") == std::optional<std::string>("granted"));
    store.write("ledger", "a new start");
    CHECK(store.read("ledger") == std::optional<std::string>("a new start"));
  }
  SECTION("a tampered file is left for read() to name, not adopted or deleted") {
    std::string bytes = before.at("ledger.sealed");
    bytes[16 + 16 + 7] = 9;  // claims generation 9: newer than the manifest
    overwrite(dir / "ledger.sealed", bytes);
    StateStore store(dir.path(), key);
    CHECK(store.generation() == 2);
    CHECK_THROWS_WITH(store.read("ledger"), Catch::Contains("was altered or corrupted"));
    CHECK(util::read_file(dir / "ledger.sealed") == bytes);
  }
}

TEST_CASE("state store: a state directory of the version-1 format (no store id) still opens, and stays version 1") {
  test::TempDir dir;
  for (const char* name : {"consent.sealed", "manifest.sealed"}) {
    fs::copy_file(fs::path(SOTTO_SOURCE_DIR) / "tests/data/state-v1" / name, dir / name);
  }
  client::StateKey key;
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i + 1);
  {
    StateStore store(dir.path(), key, 4);
    CHECK(store.generation() == 4);
    CHECK(store.read("consent") == std::optional<std::string>("granted by version 1"));
    CHECK(store.read("ledger") == std::nullopt);
    store.write("ledger", "a new entry");
  }
  CHECK(util::read_file(dir / "ledger.sealed").substr(0, 8) == std::string("SOTTOST\x01", 8));
  StateStore store(dir.path(), key, 5);
  CHECK(store.read("ledger") == std::optional<std::string>("a new entry"));
  test::TempDir fresh;  // a new store is version 2
  StateStore(fresh.path(), key).write("consent", "granted");
  CHECK(util::read_file(fresh / "consent.sealed").substr(0, 8) == std::string("SOTTOST\x02", 8));
}

TEST_CASE("state store: one process at a time") {
  test::TempDir dir;
  const auto key = crypto::random_secret<client::kStateKeyBytes>();
  StateStore store(dir.path(), key);
  // flock locks are per open file description: a second open in this process conflicts as another process would.
  CHECK_THROWS_WITH(StateStore(dir.path(), key), Catch::Contains("is in use by another process"));
}

TEST_CASE("state key files: made with mode 0600 and refused when others may read them or they hold no key") {
  test::TempDir dir;
  const fs::path file = dir / "state.key";
  client::create_state_key_file(file);
  CHECK((fs::status(file).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(util::read_file(file).size() == 65);
  const auto key = client::read_state_key_file(file);
  CHECK_THROWS_WITH(client::create_state_key_file(file), Catch::Contains("a key is never replaced"));
  CHECK(client::read_state_key_file(file) == key);
  ::chmod(file.c_str(), 0644);
  CHECK_THROWS_WITH(client::read_state_key_file(file), Catch::Contains("mode 0644") && Catch::Contains("chmod 600"));
  const fs::path bad = dir / "bad.key";
  overwrite(bad, "not a key\n");
  ::chmod(bad.c_str(), 0600);
  CHECK_THROWS_WITH(client::read_state_key_file(bad), Catch::Contains("64 hex digits"));
  CHECK_THROWS_WITH(client::read_state_key_file(dir / "missing.key"), Catch::Contains("sotto-client keygen"));
}
