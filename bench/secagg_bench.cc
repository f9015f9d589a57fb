// Whole SecAgg+ rounds on the in-memory state machines (issue 3): n ClientSessions and one ServerSession exchange
// messages in memory, as tests/common/secagg/protocol_test.cc drives them, and the program prints one Markdown
// table row per configuration.
//
// Dropout: round(d·n) clients, chosen by a fixed-seed shuffle, vanish after sharing their keys (R1), before
// sending their masked input — the expensive case for the server, which must reconstruct their mask keys and remove
// their pairwise masks from the survivors' inputs.
//
// Measured (CPU time of this thread, CLOCK_THREAD_CPUTIME_ID; the program is single-threaded):
//   client ms   mean over the surviving clients of the CPU time of their four steps (start, on_key_directory,
//               on_shares, on_unmask_request); every client runs and is timed, so the mean is over all survivors;
//   server ms   the sum over every on_* and close_* call of the ServerSession, with the part spent in
//               summing (below) and in close_unmasking (Shamir reconstruction of the
//               seeds and keys, X25519 for the dropped clients' seeds, and the mask expansion) shown apart;
//   client masking   the part of a client's CPU time inside on_shares (deriving its pairwise seeds and adding
//               its 1 + k masks), against raw keystream for 1 + k masks of m words;
//   summing     the server's on_masked_input calls and close_masked_input (holding each input, packed as it arrives over the wire at
//               the round's width, and adding it once no neighbour can accuse its sender), against the plain sum;
//   plain sum   adding n_surv plain uint32 vectors of length m into an accumulator (one distinct vector per
//               survivor up to 1 GiB of them, so that they are no warmer in cache than the masked inputs were);
//   floor       the plain sum plus raw AES-128-CTR keystream (raw_keystream_seconds: EVP over 16 KiB buffers, as
//               `openssl speed -evp aes-128-ctr`) for exactly as many masks as the server expands: one self mask
//               per survivor and, for each dropped client, one pairwise mask per surviving neighbour; measured in
//               the same process right after the round;
//   upload      per surviving client, in struct sizes: AdvertiseKeys (32 B + 36 B per neighbour: index and channel
//               key) + for each EncryptedShare 4 B (peer) +
//               its ciphertext + MaskedInput (4 B per word) + for each RevealedShare 4 B (owner) + its share bytes;
//               compared with a plain 32-bit upload of 4m bytes.
//   download    per surviving client: KeyDirectory (68 B per advertised neighbour: index and two keys) +
//               SharesForYou (4 B + ciphertext each) + UnmaskRequest (4 B per index). The result is not counted.
// The recovered sum is checked against the plain sum of the survivors' inputs in every configuration; a mismatch
// (or an aborted round) exits with status 1.
//
// Inputs: client i's word w is 2654435761·i + 40503·w + 1 mod 2^32, generated when the session is created; the
// session owns it until on_shares moves it into the masked input, which reaches the server packed at the round's
// width (as_on_the_wire, untimed) and is dropped once the server has summed it.
// So at most n·4m bytes of inputs are resident at once (between R0 and R2).
//
// Run: sotto_bench_secagg [--header] [kind:n:m:d ...], kind = full (k = n-1, t = floor(k/2)+1 as in
// complete_graph_parameters) or plus (k, t from find_parameters(n, max(d, 0.1), 0.05)); with no configuration,
// the grid of BENCHMARKS.md (and `--header` alone prints the table's header, nothing else). `sotto_bench_secagg --params` prints k and t for the grid's n and d.
#include <openssl/evp.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/crypto/prg.h"
#include "common/crypto/random.h"
#include "common/secagg/client_session.h"
#include "common/secagg/graph.h"
#include "common/secagg/messages.h"
#include "common/secagg/packed_words.h"
#include "common/secagg/parameters.h"
#include "common/secagg/server_session.h"

using namespace sotto::secagg;

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double wall_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Accumulates CPU and wall time of the calls it wraps.
struct Stopwatch {
  double cpu = 0;
  double wall = 0;
  template <typename F>
  auto time(F&& body) {
    const double c0 = thread_cpu_seconds(), w0 = wall_seconds();
    struct Add {
      Stopwatch* s;
      double c0, w0;
      ~Add() {
        s->cpu += thread_cpu_seconds() - c0;
        s->wall += wall_seconds() - w0;
      }
    } add{this, c0, w0};
    return body();
  }
};

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "sotto_bench_secagg: FAILED: %s\n", why.c_str());
  std::fflush(stdout);
  std::exit(1);
}

// CPU seconds of raw AES-128-CTR keystream for `masks` keys of `words` words each, made as `openssl speed -evp
// aes-128-ctr` makes it: a key schedule per key, then 16 KiB per EVP call into one buffer that stays in cache, and
// nothing added anywhere. The floor for the mask expansion: no protocol can expand masks with less.
double raw_keystream_seconds(std::size_t masks, std::size_t words) {
  constexpr std::size_t kCallBytes = 16384;
  std::vector<std::uint8_t> zeros(kCallBytes, 0), out(kCallBytes);
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CTR", nullptr);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::vector<std::array<std::uint8_t, 32>> keys(masks);
  for (auto& key : keys) sotto::crypto::random_bytes(key);
  const double start = thread_cpu_seconds();
  for (const auto& key : keys) {
    if (EVP_EncryptInit_ex2(ctx, cipher, key.data(), key.data() + 16, nullptr) != 1) die("AES-128-CTR init");
    for (std::size_t done = 0; done < 4 * words; done += kCallBytes) {
      int length = 0;
      const auto n = static_cast<int>(std::min(kCallBytes, 4 * words - done));
      if (EVP_EncryptUpdate(ctx, out.data(), &length, zeros.data(), n) != 1) die("AES-128-CTR keystream");
    }
  }
  const double seconds = thread_cpu_seconds() - start;
  volatile std::uint8_t sink = out[0];
  (void)sink;
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(cipher);
  return seconds;
}

constexpr std::uint32_t kA = 2654435761u;
constexpr std::uint32_t kB = 40503u;

std::vector<std::uint32_t> make_input(ClientIndex i, std::size_t m) {
  std::vector<std::uint32_t> v(m);
  const std::uint32_t base = kA * i + 1;
  for (std::size_t w = 0; w < m; ++w) v[w] = base + kB * static_cast<std::uint32_t>(w);
  return v;
}

// A masked input as the daemon's server session gets it: its words packed at the round's width, in the bytes that
// arrived (secagg::masked_input_of), so that the server adds them without unpacking.
MaskedInput as_on_the_wire(MaskedInput words, std::uint32_t bits) {
  const auto bytes = pack_words(words.y, bits);
  MaskedInput out;
  out.packed.resize(bytes.size());
  std::memcpy(out.packed.data(), bytes.data(), bytes.size());
  return out;
}

struct Config {
  std::string kind;  // "full" or "plus"
  std::uint32_t n = 0;
  std::size_t m = 0;
  double d = 0;
};

SecAggParameters parameters_of(const Config& c) {
  if (c.kind == "full") return complete_graph_parameters(c.n, c.d);
  return find_parameters(c.n, std::max(c.d, 0.1), 0.05);
}

std::string human(std::size_t m) {
  if (m % 1000000 == 0) return std::to_string(m / 1000000) + "M";
  if (m % 1000 == 0) return std::to_string(m / 1000) + "K";
  return std::to_string(m);
}

void run(const Config& c) {
  const SecAggParameters p = parameters_of(c);
  RoundConfig config;
  config.round_id = 7;
  config.n = c.n;
  config.k = p.k;
  config.t = p.t;
  config.vector_length = c.m;
  sotto::crypto::random_bytes(config.graph_seed);

  // Who vanishes after R1.
  const auto n_drop = static_cast<std::uint32_t>(c.d * c.n + 0.5);
  std::vector<ClientIndex> order(c.n);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937 rng(12345 + c.n);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<bool> drops(c.n, false);
  for (std::uint32_t r = 0; r < n_drop; ++r) drops[order[r]] = true;

  const double round_wall0 = wall_seconds();
  Stopwatch server_watch;
  Stopwatch summing_watch;    // the part of server_watch inside on_masked_input
  Stopwatch unmasking_watch;  // the part of server_watch inside close_unmasking
  std::vector<Stopwatch> client_watch(c.n);
  std::vector<double> masking_cpu(c.n, 0);  // the part of client_watch inside on_shares (the masking)
  std::vector<std::size_t> upload(c.n, 0), download(c.n, 0);

  ServerSession server = server_watch.time([&] { return ServerSession(config); });
  std::vector<ClientSession> clients;
  clients.reserve(c.n);
  for (ClientIndex i = 0; i < c.n; ++i) clients.emplace_back(config, i, make_input(i, c.m));

  // R0
  for (ClientIndex i = 0; i < c.n; ++i) {
    const AdvertiseKeys keys = client_watch[i].time([&] { return clients[i].start(); });
    upload[i] += keys.mask_public.size() + keys.channel_public.size() * (4 + 32);
    server_watch.time([&] { server.on_advertise(i, keys); return 0; });
  }
  const std::map<ClientIndex, KeyDirectory> directories = server_watch.time([&] { return server.close_advertise(); });
  // R1
  for (ClientIndex i = 0; i < c.n; ++i) {
    const KeyDirectory& directory = directories.at(i);
    download[i] += directory.keys.size() * (4 + 64);
    const EncryptedShares shares = client_watch[i].time([&] { return clients[i].on_key_directory(directory); });
    for (const auto& s : shares.shares) upload[i] += 4 + s.ciphertext.size();
    server_watch.time([&] { server.on_encrypted_shares(i, shares); return 0; });
  }
  std::map<ClientIndex, SharesForYou> for_you = server_watch.time([&] { return server.close_share_keys(); });
  // R2: the dropped clients vanish here.
  std::uint64_t survivor_index_sum = 0;
  std::uint32_t n_surv = 0;
  for (auto& [i, shares] : for_you) {
    for (const auto& s : shares.shares) download[i] += 4 + s.ciphertext.size();
    if (drops[i]) continue;
    const double client_before = client_watch[i].cpu;
    MaskedInput masked = client_watch[i].time([&] { return clients[i].on_shares(shares).input; });
    masking_cpu[i] = client_watch[i].cpu - client_before;
    masked = as_on_the_wire(std::move(masked), config.bits);  // untimed: the daemon receives it packed
    upload[i] += masked.packed.size();
    const double before = server_watch.cpu;
    server_watch.time([&] { server.on_masked_input(i, std::move(masked)); return 0; });
    summing_watch.cpu += server_watch.cpu - before;
    survivor_index_sum += i;
    ++n_surv;
  }  // each masked input is freed here, once summed
  for_you.clear();
  const double before_close = server_watch.cpu;  // close_masked_input adds the inputs still held
  std::map<ClientIndex, UnmaskRequest> requests = server_watch.time([&] { return server.close_masked_input(); });
  summing_watch.cpu += server_watch.cpu - before_close;
  // R3
  for (const auto& [i, request] : requests) {
    download[i] += 4 * (request.survivors.size() + request.dropped.size());
    const UnmaskResponse response = client_watch[i].time([&] { return clients[i].on_unmask_request(request); });
    for (const auto& s : response.self_mask_shares) upload[i] += 4 + s.share.size();
    for (const auto& s : response.mask_key_shares) upload[i] += 4 + s.share.size();
    server_watch.time([&] { server.on_unmask_response(i, response); return 0; });
  }
  const double before_unmasking = server_watch.cpu;
  AggregationResult result = server_watch.time([&] { return server.close_unmasking(); });
  unmasking_watch.cpu = server_watch.cpu - before_unmasking;
  const double round_wall = wall_seconds() - round_wall0;

  // Verify against the plain sum of the survivors' inputs (closed form of make_input summed over survivors).
  if (result.survivors.size() != n_surv) die("survivor count mismatch");
  for (ClientIndex u : result.survivors) {
    if (drops[u]) die("a dropped client is listed as a survivor");
  }
  {
    const std::uint32_t base = kA * static_cast<std::uint32_t>(survivor_index_sum) + n_surv;
    const std::uint32_t step = kB * n_surv;
    for (std::size_t w = 0; w < c.m; ++w) {
      if (result.sum[w] != base + step * static_cast<std::uint32_t>(w)) {
        die("recovered sum differs from the plain sum at word " + std::to_string(w) + " (" + c.kind + " n=" +
            std::to_string(c.n) + " m=" + std::to_string(c.m) + ")");
      }
    }
  }

  // Masks the server expands: a self mask per survivor, and per dropped client one per surviving neighbour.
  const NeighbourGraph& graph = server.graph();
  std::size_t masks = n_surv;
  for (ClientIndex i = 0; i < c.n; ++i) {
    if (!drops[i]) continue;
    for (ClientIndex j : graph.neighbours(i)) masks += drops[j] ? 0 : 1;
  }

  // Client figures: mean over survivors (four steps).
  double client_cpu = 0, client_max = 0, client_masking = 0;
  std::size_t up = 0, down = 0;
  for (ClientIndex i = 0; i < c.n; ++i) {
    if (drops[i]) continue;
    client_cpu += client_watch[i].cpu;
    client_masking += masking_cpu[i];
    client_max = std::max(client_max, client_watch[i].cpu);
    up += upload[i];
    down += download[i];
  }
  client_cpu /= n_surv;
  client_masking /= n_surv;
  const double up_mean = static_cast<double>(up) / n_surv;
  const double down_mean = static_cast<double>(down) / n_surv;

  clients.clear();
  result.sum.clear();
  result.sum.shrink_to_fit();

  // Baselines, same process, right after the round.
  // As many distinct vectors as the survivors, up to 1 GiB of them: as cold in cache as the masked inputs were.
  const std::size_t pool_size = std::min<std::size_t>(n_surv, std::max<std::size_t>(8, (std::size_t{1} << 28) / c.m));
  std::vector<std::vector<std::uint32_t>> pool;
  for (std::size_t v = 0; v < pool_size; ++v) pool.push_back(make_input(static_cast<ClientIndex>(v), c.m));
  std::vector<std::uint32_t> acc(c.m, 0);
  const auto plain_sum = [&] {
    for (std::uint32_t u = 0; u < n_surv; ++u) {
      const auto& v = pool[u % pool_size];
      for (std::size_t w = 0; w < c.m; ++w) acc[w] += v[w];
    }
  };
  Stopwatch sum_watch;
  sum_watch.time([&] { plain_sum(); return 0; });
  const double floor_seconds = sum_watch.cpu + raw_keystream_seconds(masks, c.m);
  // A surviving client masks with its self mask and one pairwise mask per neighbour (every neighbour shared).
  const double client_floor_seconds = raw_keystream_seconds(1 + p.k, c.m);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double plain_up = 4.0 * static_cast<double>(c.m);
  std::printf(
      "| %s | %u | %s | %.0f%% | %u | %u | %u | %zu | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f | %.2f | "
      "%.1f | %.1f | %.2f | %.0f | %.4f | %.0f | %.1f | %ld | ok |\n",
      c.kind == "full" ? "n−1" : "SecAgg+", c.n, human(c.m).c_str(), 100 * c.d, p.k, p.t, n_surv, masks,
      1e3 * client_cpu, 1e3 * client_max, 1e3 * client_masking, client_masking / client_floor_seconds,
      1e3 * server_watch.cpu, 1e3 * summing_watch.cpu, 1e3 * unmasking_watch.cpu, 1e3 * sum_watch.cpu,
      summing_watch.cpu / sum_watch.cpu, 1e3 * server_watch.wall, 1e3 * floor_seconds,
      server_watch.cpu / floor_seconds, up_mean, up_mean / plain_up, down_mean, round_wall, ru.ru_maxrss / 1024);
  std::fflush(stdout);
}

void header() {
  std::printf(
      "| graph | n | m | dropout | k | t | survivors | masks the server expands | client CPU ms (mean, 4 steps) | "
      "client CPU ms (max) | client masking ms (on_shares) | masking / floor | server CPU ms | "
      "of which summing (on_masked_input, close_masked_input) | of which unmasking (close_unmasking) | plain sum ms | summing / plain sum | "
      "server wall ms | floor ms (raw AES-CTR + plain sum) | server / floor | "
      "upload B/client | upload / plain 4m | download B/client | round wall s | peak RSS MiB | sum |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
}

// The grid of BENCHMARKS.md, in the order of its table: k = n - 1 first, then the SecAgg+ degree.
std::vector<Config> default_grid() {
  std::vector<Config> g;
  for (std::size_t m : {100000u, 1000000u}) {
    for (double d : {0.0, 0.1, 0.3}) g.push_back({"full", 100, m, d});
  }
  for (double d : {0.0, 0.1, 0.3}) g.push_back({"full", 500, 100000, d});
  g.push_back({"full", 1000, 100000, 0.1});
  g.push_back({"full", 500, 1000000, 0.1});
  g.push_back({"full", 1000, 1000000, 0.1});  // about 14 minutes of CPU and 8 GiB: the slowest row
  for (std::size_t m : {100000u, 1000000u}) {
    for (std::uint32_t n : {100u, 500u, 1000u}) {
      for (double d : {0.0, 0.1, 0.3}) g.push_back({"plus", n, m, d});
    }
  }
  return g;
}

Config parse(const std::string& s) {
  Config c;
  const auto a = s.find(':'), b = s.find(':', a + 1), e = s.find(':', b + 1);
  if (a == std::string::npos || b == std::string::npos || e == std::string::npos) die("bad configuration " + s);
  c.kind = s.substr(0, a);
  if (c.kind != "full" && c.kind != "plus") die("kind must be full or plus: " + s);
  c.n = static_cast<std::uint32_t>(std::stoul(s.substr(a + 1, b - a - 1)));
  c.m = std::stoul(s.substr(b + 1, e - b - 1));
  c.d = std::stod(s.substr(e + 1));
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<Config> grid;
    bool want_header = argc == 1;
    for (int a = 1; a < argc; ++a) {
      const std::string arg = argv[a];
      if (arg == "--header") {
        want_header = true;
      } else if (arg == "--params") {
        for (std::uint32_t n : {100u, 500u, 1000u}) {
          for (double d : {0.0, 0.1, 0.3}) {
            const auto p = find_parameters(n, std::max(d, 0.1), 0.05);
            const auto f = complete_graph_parameters(n, d);
            std::printf("n=%u d=%.1f plus k=%u t=%u (log2 fail %.1f, %.1f) full k=%u t=%u\n", n, d, p.k, p.t,
                        p.log2_correctness_failure, p.log2_security_failure, f.k, f.t);
          }
        }
        return 0;
      } else {
        grid.push_back(parse(arg));
      }
    }
    if (want_header) header();
    if (grid.empty() && want_header && argc > 1) return 0;  // --header alone: the table's header, nothing run
    if (grid.empty()) grid = default_grid();
    for (const Config& c : grid) run(c);
  } catch (const std::exception& e) {
    die(e.what());
  }
  return 0;
}
