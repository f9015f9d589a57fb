// TLS contexts over real loopback sockets, with certificates made at test time by scripts/make-certs.sh: one PKI
// the server trusts, and an unrelated one for the wrong-CA cases.
#include "common/net/tls_context.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/net/frame.h"
#include "common/util/error.h"

namespace sotto::net {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace fs = std::filesystem;
using boost::system::error_code;
using tcp = asio::ip::tcp;

constexpr auto kIoTimeout = std::chrono::seconds(10);

struct Pki {
  fs::path dir;
  fs::path ca() const { return dir / "ca.pem"; }
  fs::path server_cert() const { return dir / "server.pem"; }
  fs::path server_key() const { return dir / "server.key"; }
  fs::path client_cert() const { return dir / "client-1.pem"; }
  fs::path client_key() const { return dir / "client-1.key"; }
};

// Two independent throw-away PKIs in a temporary directory, made once per test process and removed at exit.
class Pkis {
 public:
  Pkis() {
    std::string pattern = (fs::temp_directory_path() / "sotto-tls-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    ours.dir = root_ / "ours";
    other.dir = root_ / "other";
    for (const Pki* pki : {&ours, &other}) {
      const std::string command =
          "bash '" SOTTO_SOURCE_DIR "/scripts/make-certs.sh' '" + pki->dir.string() + "' 1 >/dev/null 2>&1";
      if (std::system(command.c_str()) != 0 || !fs::exists(pki->client_key())) {
        throw std::runtime_error("failed to run: " + command);
      }
    }
  }
  ~Pkis() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  Pkis(const Pkis&) = delete;
  Pkis& operator=(const Pkis&) = delete;

  Pki ours, other;
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
};

const Pkis& pkis() {
  static const Pkis instance;
  return instance;
}

TlsServerOptions server_options(ClientCertificate client_certificate = ClientCertificate::kOptional) {
  const Pki& p = pkis().ours;
  return {p.server_cert(), p.server_key(), p.ca(), client_certificate};
}

struct ServerOutcome {
  error_code handshake;  // set when the TLS handshake failed
  error_code io;         // set when reading or echoing the frame failed
  std::string peer_cn;
  std::string echoed;  // the payload of the frame echoed back
};

// Accepts one connection on 127.0.0.1, handshakes, reads one frame and writes it back. Runs on its own thread for at
// most 20 s; outcome() waits at most 15 s.
class EchoServer {
 public:
  explicit EchoServer(ssl::context ctx)
      : ctx_(std::move(ctx)), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec) return finish([&](ServerOutcome& o) { o.io = ec; });
      stream_.emplace(std::move(socket), ctx_);
      stream_->async_handshake(ssl::stream_base::server, [this](error_code hec) {
        if (hec) return finish([&](ServerOutcome& o) { o.handshake = hec; });
        outcome_.peer_cn = peer_common_name(*stream_);
        read_frame();
      });
    });
    thread_ = std::thread([this] { io_.run_for(std::chrono::seconds(20)); });
  }
  ~EchoServer() {
    io_.stop();
    thread_.join();
  }
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  ServerOutcome outcome() {
    auto future = promise_.get_future();
    REQUIRE(future.wait_for(std::chrono::seconds(15)) == std::future_status::ready);
    return future.get();
  }

 private:
  void read_frame() {
    asio::async_read(*stream_, asio::buffer(header_), [this](error_code ec, std::size_t) {
      if (ec) return finish([&](ServerOutcome& o) { o.io = ec; });
      body_.resize(decode_frame_header(header_));
      asio::async_read(*stream_, asio::buffer(body_), [this](error_code rec, std::size_t) {
        if (rec) return finish([&](ServerOutcome& o) { o.io = rec; });
        reply_ = std::string(reinterpret_cast<const char*>(header_.data()), header_.size()) + body_;
        asio::async_write(*stream_, asio::buffer(reply_), [this](error_code wec, std::size_t) {
          finish([&](ServerOutcome& o) {
            o.io = wec;
            o.echoed = body_;
          });
        });
      });
    });
  }

  template <typename F>
  void finish(F&& record) {
    record(outcome_);
    // Close after a failure so that the client sees the connection end rather than waiting.
    if (stream_ && (outcome_.handshake || outcome_.io)) {
      error_code ignored;
      stream_->lowest_layer().close(ignored);
    }
    promise_.set_value(outcome_);
  }

  asio::io_context io_;
  ssl::context ctx_;
  tcp::acceptor acceptor_;
  std::optional<TlsStream> stream_;
  std::array<std::uint8_t, kFrameHeaderBytes> header_{};
  std::string body_, reply_;
  ServerOutcome outcome_;
  std::promise<ServerOutcome> promise_;
  std::thread thread_;
};

struct ClientOutcome {
  error_code handshake;
  error_code io;
  long verify_result = -1;  // SSL_get_verify_result after the handshake
  std::string server_cn;
  std::string echoed;
  bool timed_out = false;
};

// Connects, handshakes (checking `server_name` unless empty), sends one hello frame and reads the echo; everything
// within kIoTimeout.
ClientOutcome run_client(ssl::context& ctx, unsigned short port, const std::string& server_name,
                         const std::string& payload_id = "client-1") {
  asio::io_context io;
  TlsStream stream(io, ctx);
  stream.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  if (!server_name.empty()) expect_server_name(stream, server_name);

  v1::Envelope hello;
  hello.mutable_hello()->set_client_id(payload_id);
  const std::string frame = encode_frame(hello);
  std::array<std::uint8_t, kFrameHeaderBytes> header{};
  std::string body;
  ClientOutcome out;

  stream.async_handshake(ssl::stream_base::client, [&](error_code ec) {
    out.handshake = ec;
    out.verify_result = SSL_get_verify_result(stream.native_handle());
    if (ec) return;
    out.server_cn = peer_common_name(stream);
    asio::async_write(stream, asio::buffer(frame), [&](error_code wec, std::size_t) {
      if (wec) {
        out.io = wec;
        return;
      }
      asio::async_read(stream, asio::buffer(header), [&](error_code rec, std::size_t) {
        if (rec) {
          out.io = rec;
          return;
        }
        body.resize(decode_frame_header(header));
        asio::async_read(stream, asio::buffer(body), [&](error_code bec, std::size_t) {
          out.io = bec;
          if (!bec) out.echoed = body;
        });
      });
    });
  });
  io.run_for(kIoTimeout);
  out.timed_out = !io.stopped();
  return out;
}

std::string expected_payload(const std::string& id) {
  v1::Envelope hello;
  hello.mutable_hello()->set_client_id(id);
  return encode_frame(hello).substr(kFrameHeaderBytes);
}

std::string server_context_error(const TlsServerOptions& options) {
  try {
    make_server_context(options);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("make_server_context accepted the options");
  return {};
}

std::string client_context_error(const TlsClientOptions& options) {
  try {
    make_client_context(options);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("make_client_context accepted the options");
  return {};
}

}  // namespace

TEST_CASE("TLS: a client with a certificate from our CA connects and the server sees its CN", "[net][tls]") {
  const Pki& p = pkis().ours;
  EchoServer server(make_server_context(server_options()));
  auto ctx = make_client_context({p.ca(), p.client_cert(), p.client_key()});
  const ClientOutcome client = run_client(ctx, server.port(), "localhost");
  const ServerOutcome seen = server.outcome();

  CHECK_FALSE(client.timed_out);
  CHECK_FALSE(client.handshake);
  CHECK_FALSE(client.io);
  CHECK(client.verify_result == X509_V_OK);
  CHECK(client.server_cn == "localhost");
  CHECK(client.echoed == expected_payload("client-1"));
  CHECK_FALSE(seen.handshake);
  CHECK_FALSE(seen.io);
  CHECK(seen.peer_cn == "client-1");
  CHECK(seen.echoed == expected_payload("client-1"));
}

TEST_CASE("TLS: a client without a certificate (token authentication) connects and has no CN", "[net][tls]") {
  EchoServer server(make_server_context(server_options()));
  auto ctx = make_client_context({pkis().ours.ca(), {}, {}});
  const ClientOutcome client = run_client(ctx, server.port(), "localhost", "token-client");
  const ServerOutcome seen = server.outcome();

  CHECK_FALSE(client.handshake);
  CHECK_FALSE(client.io);
  CHECK(client.echoed == expected_payload("token-client"));
  CHECK_FALSE(seen.handshake);
  CHECK(seen.peer_cn.empty());
  CHECK(seen.echoed == expected_payload("token-client"));
}

TEST_CASE("TLS: a server that requires client certificates fails the handshake of a client without one",
          "[net][tls]") {
  EchoServer server(make_server_context(server_options(ClientCertificate::kRequired)));
  auto ctx = make_client_context({pkis().ours.ca(), {}, {}});
  const ClientOutcome client = run_client(ctx, server.port(), "localhost", "token-client");
  const ServerOutcome seen = server.outcome();
  CHECK(seen.handshake);  // refused before any application byte is read
  CHECK(seen.echoed.empty());
  CHECK(client.echoed.empty());
}

TEST_CASE("TLS: a server that requires client certificates admits a client with one from its CA", "[net][tls]") {
  const Pki& p = pkis().ours;
  EchoServer server(make_server_context(server_options(ClientCertificate::kRequired)));
  auto ctx = make_client_context({p.ca(), p.client_cert(), p.client_key()});
  const ClientOutcome client = run_client(ctx, server.port(), "localhost");
  const ServerOutcome seen = server.outcome();
  CHECK_FALSE(seen.handshake);
  CHECK(seen.peer_cn == "client-1");
  CHECK(client.echoed == expected_payload("client-1"));
}

TEST_CASE("TLS: a server that does not request client certificates sees no CN even from a client that has one",
          "[net][tls]") {
  const Pki& p = pkis().ours;
  EchoServer server(make_server_context(server_options(ClientCertificate::kNotRequested)));
  auto ctx = make_client_context({p.ca(), p.client_cert(), p.client_key()});
  const ClientOutcome client = run_client(ctx, server.port(), "localhost");
  const ServerOutcome seen = server.outcome();
  CHECK(client.echoed == expected_payload("client-1"));
  CHECK_FALSE(seen.handshake);
  CHECK(seen.peer_cn.empty());
}

TEST_CASE("TLS: the server's name may be checked as its IP address", "[net][tls]") {
  EchoServer server(make_server_context(server_options()));
  auto ctx = make_client_context({pkis().ours.ca(), {}, {}});
  const ClientOutcome client = run_client(ctx, server.port(), "127.0.0.1");
  CHECK_FALSE(client.handshake);
  CHECK(client.echoed == expected_payload("client-1"));
  CHECK_FALSE(server.outcome().handshake);
}

TEST_CASE("TLS: a client that trusts another CA refuses the server's certificate", "[net][tls]") {
  EchoServer server(make_server_context(server_options()));
  auto ctx = make_client_context({pkis().other.ca(), {}, {}});
  const ClientOutcome client = run_client(ctx, server.port(), "localhost");
  const ServerOutcome seen = server.outcome();

  CHECK_FALSE(client.timed_out);
  REQUIRE(client.handshake);
  CHECK_THAT(client.handshake.message(), Catch::Contains("certificate verify failed"));
  // Depending on whether the server sends its CA along, the chain ends in an unknown issuer or an untrusted root.
  CHECK((client.verify_result == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
         client.verify_result == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN));
  CHECK(client.echoed.empty());
  CHECK(seen.handshake);  // the client's alert ends the server's handshake too
}

TEST_CASE("TLS: a client expecting another host name refuses the server's certificate", "[net][tls]") {
  EchoServer server(make_server_context(server_options()));
  auto ctx = make_client_context({pkis().ours.ca(), {}, {}});
  const ClientOutcome client = run_client(ctx, server.port(), "wrong.example");
  CHECK_FALSE(client.timed_out);
  REQUIRE(client.handshake);
  CHECK(client.verify_result == X509_V_ERR_HOSTNAME_MISMATCH);
  CHECK(client.echoed.empty());
  CHECK(server.outcome().handshake);
}

TEST_CASE("TLS: a client expecting another IP address refuses the server's certificate", "[net][tls]") {
  EchoServer server(make_server_context(server_options()));
  auto ctx = make_client_context({pkis().ours.ca(), {}, {}});
  const ClientOutcome client = run_client(ctx, server.port(), "127.0.0.2");
  REQUIRE(client.handshake);
  CHECK(client.verify_result == X509_V_ERR_IP_ADDRESS_MISMATCH);
  CHECK(server.outcome().handshake);
}

TEST_CASE("TLS: the server refuses a client certificate issued by another CA", "[net][tls]") {
  const Pki& them = pkis().other;
  EchoServer server(make_server_context(server_options()));
  // The client trusts our CA (so it accepts the server) but presents a certificate from the other PKI.
  auto ctx = make_client_context({pkis().ours.ca(), them.client_cert(), them.client_key()});
  const ClientOutcome client = run_client(ctx, server.port(), "localhost");
  const ServerOutcome seen = server.outcome();

  REQUIRE(seen.handshake);
  CHECK_THAT(seen.handshake.message(), Catch::Contains("certificate verify failed"));
  CHECK(seen.peer_cn.empty());
  CHECK(seen.echoed.empty());
  // In TLS 1.3 the client may finish its side of the handshake first; either way it never gets an answer.
  CHECK_FALSE(client.timed_out);
  CHECK((client.handshake || client.io));
  CHECK(client.echoed.empty());
}

TEST_CASE("TLS: the server refuses a TLS 1.2 client", "[net][tls]") {
  const Pki& p = pkis().ours;
  EchoServer server(make_server_context(server_options()));
  auto ctx = make_tls12_only_client_context({p.ca(), p.client_cert(), p.client_key()});
  const ClientOutcome client = run_client(ctx, server.port(), "localhost");
  const ServerOutcome seen = server.outcome();

  CHECK_FALSE(client.timed_out);
  REQUIRE(client.handshake);
  CHECK_THAT(client.handshake.message(), Catch::Contains("protocol version"));
  REQUIRE(seen.handshake);
  CHECK_THAT(seen.handshake.message(), Catch::Contains("unsupported protocol"));
  CHECK(seen.echoed.empty());
}

TEST_CASE("TLS: the server fails the handshake of a plaintext client and closes the connection", "[net][tls]") {
  EchoServer server(make_server_context(server_options()));
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
  v1::Envelope hello;
  hello.mutable_hello()->set_client_id("plaintext");
  asio::write(socket, asio::buffer(encode_frame(hello)));

  const ServerOutcome seen = server.outcome();
  REQUIRE(seen.handshake);
  CHECK(seen.echoed.empty());
  CHECK(seen.peer_cn.empty());

  // The client sees at most an alert, then the end of the stream; never its frame echoed.
  std::string received;
  std::array<char, 512> buf{};
  error_code read_error;
  std::function<void()> read_more = [&] {
    socket.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t n) {
      received.append(buf.data(), n);
      if (ec) {
        read_error = ec;
        return;
      }
      read_more();
    });
  };
  read_more();
  io.run_for(kIoTimeout);
  CHECK(io.stopped());
  CHECK(read_error);
  CHECK(received.find("plaintext") == std::string::npos);
}

TEST_CASE("TLS: a missing certificate, key or CA file is reported with its path and config key", "[net][tls]") {
  const Pki& p = pkis().ours;
  const fs::path missing = pkis().root() / "no-such.pem";

  TlsServerOptions o = server_options();
  o.cert_file = missing;
  CHECK_THAT(server_context_error(o), Catch::Contains(missing.string()) && Catch::Contains("cert_file") &&
                                          Catch::Contains("No such file"));
  o = server_options();
  o.key_file = missing;
  CHECK_THAT(server_context_error(o), Catch::Contains(missing.string()) && Catch::Contains("key_file"));
  o = server_options();
  o.ca_file = missing;
  CHECK_THAT(server_context_error(o), Catch::Contains(missing.string()) && Catch::Contains("ca_file"));
  o = server_options();
  o.cert_file.clear();
  CHECK_THAT(server_context_error(o), Catch::Contains("cert_file is not set"));

  CHECK_THAT(client_context_error({missing, {}, {}}), Catch::Contains(missing.string()) && Catch::Contains("ca_file"));
  CHECK_THAT(client_context_error({p.ca(), p.client_cert(), {}}), Catch::Contains("key_file is not set"));
}

TEST_CASE("TLS: files that are not PEM are reported with the config key and OpenSSL's reason", "[net][tls]") {
  const fs::path junk = pkis().root() / "junk.pem";
  std::ofstream(junk) << "this is not a certificate\n";

  TlsServerOptions o = server_options();
  o.cert_file = junk;
  CHECK_THAT(server_context_error(o), Catch::Contains(junk.string()) && Catch::Contains("cert_file") &&
                                          Catch::Contains("error:") && Catch::Contains("PEM"));
  o = server_options();
  o.key_file = junk;
  CHECK_THAT(server_context_error(o), Catch::Contains(junk.string()) && Catch::Contains("key_file") &&
                                          Catch::Contains("error:"));
  o = server_options();
  o.ca_file = junk;
  CHECK_THAT(server_context_error(o), Catch::Contains(junk.string()) && Catch::Contains("ca_file") &&
                                          Catch::Contains("error:"));
}

TEST_CASE("TLS: a key that does not belong to the certificate is reported as a mismatch", "[net][tls]") {
  const Pki& p = pkis().ours;
  TlsServerOptions o = server_options();
  o.key_file = p.client_key();
  CHECK_THAT(server_context_error(o), Catch::Contains("is not the private key of the certificate") &&
                                          Catch::Contains(p.client_key().string()) &&
                                          Catch::Contains(p.server_cert().string()));
  CHECK_THAT(client_context_error({p.ca(), p.client_cert(), p.server_key()}),
             Catch::Contains("is not the private key of the certificate"));
}

TEST_CASE("TLS: expect_server_name refuses an empty name", "[net][tls]") {
  asio::io_context io;
  auto ctx = make_client_context({pkis().ours.ca(), {}, {}});
  TlsStream stream(io, ctx);
  CHECK_THROWS_AS(expect_server_name(stream, ""), Error);
}

TEST_CASE("TLS: a CRL file that is missing or holds no CRL is refused naming crl_file", "[net][tls]") {
  const fs::path missing = fs::temp_directory_path() / "sotto-no-such-crl.pem";
  TlsServerOptions options = server_options();
  options.crl_file = missing;
  CHECK_THROWS_WITH(make_server_context(options), Catch::Contains("crl_file") && Catch::Contains("cannot be read"));
  options.crl_file = pkis().ours.ca();  // a certificate, not a CRL
  CHECK_THROWS_WITH(make_server_context(options), Catch::Contains("crl_file") && Catch::Contains("no PEM CRL"));
}

}  // namespace sotto::net
