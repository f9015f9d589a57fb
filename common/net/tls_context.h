// TLS contexts: how every Sotto connection is secured. Both sides speak TLS 1.3 only and trust exactly one CA
// (ca_file), the deployment's own, not the system store.
//
// The server always proves itself with its certificate. Clients prove themselves in one of two ways: a client
// certificate issued by the same CA (checked during the handshake; a certificate from any other CA fails it), or a
// bearer token in Hello (then they present no certificate, which the server allows). A client also checks that the
// server's certificate names the host it meant to reach (expect_server_name) before it sends anything.
//
// Files that are missing, unreadable or not PEM, and a key that does not belong to its certificate, are reported as
// sotto::Error naming the file, the config key that points at it, and OpenSSL's reason.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <filesystem>
#include <string>

namespace sotto::net {

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

// What the server's handshake asks of a client's certificate. A certificate that is sent is always verified
// against ca_file, and one from another CA fails the handshake.
enum class ClientCertificate {
  kNotRequested,  // token authentication only: no certificate is asked for
  kOptional,      // asked for; a client without one (token authentication) still completes the handshake
  kRequired,      // mutual TLS only: the handshake fails without a valid certificate
};

struct TlsServerOptions {
  std::filesystem::path cert_file;  // PEM: the server certificate, optionally followed by intermediates
  std::filesystem::path key_file;   // PEM: its private key
  std::filesystem::path ca_file;    // PEM: the CA that issues client certificates
  ClientCertificate client_certificate = ClientCertificate::kOptional;
  // PEM: certificate revocation lists from the CA; a client certificate they list fails the handshake. Empty: none
  // (then client certificates are not checked for revocation).
  std::filesystem::path crl_file;
};

// TLS 1.3 only. Throws sotto::Error for unreadable files or a key that does not match the certificate.
boost::asio::ssl::context make_server_context(const TlsServerOptions& options);

struct TlsClientOptions {
  std::filesystem::path ca_file;    // PEM: the CA that issued the server's certificate
  std::filesystem::path cert_file;  // PEM client certificate; empty = present none (token authentication)
  std::filesystem::path key_file;   // its private key; set exactly when cert_file is
};

// TLS 1.3 only; verifies the server's certificate chain against ca_file. Call expect_server_name on each stream too.
boost::asio::ssl::context make_client_context(const TlsClientOptions& options);

// Like make_client_context but TLS 1.2 only. Only for tests proving that a Sotto server refuses TLS 1.2.
boost::asio::ssl::context make_tls12_only_client_context(const TlsClientOptions& options);

// Before the handshake: sends `host` as SNI (unless it is an IP address) and makes certificate verification fail
// unless the server's certificate names `host` (a DNS name or an IP address) in its subjectAltName.
void expect_server_name(TlsStream& stream, const std::string& host);

// After the handshake: the subject CN of the certificate the peer presented and that verified against ca_file,
// or empty when the peer presented none.
std::string peer_common_name(const TlsStream& stream);

}  // namespace sotto::net
