#include "common/net/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "common/util/error.h"

namespace sotto::net {

namespace ssl = boost::asio::ssl;

namespace {

// Drains OpenSSL's error queue into one line.
std::string openssl_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no further detail from OpenSSL" : out;
}

// Which file a problem is about, and how to say so.
struct FileRole {
  const char* key;   // the config key that names the file
  const char* what;  // what it must contain
};
constexpr FileRole kCert{"cert_file", "a PEM certificate (chain)"};
constexpr FileRole kKey{"key_file", "the certificate's PEM private key, unencrypted"};
constexpr FileRole kCa{"ca_file", "the PEM certificate of the CA to trust"};
constexpr FileRole kCrl{"crl_file", "the client CA's PEM certificate revocation list (openssl ca -gencrl)"};

[[noreturn]] void fail(const FileRole& role, const std::filesystem::path& file, const std::string& problem) {
  throw Error("TLS " + std::string(role.key) + " '" + file.string() + "': " + problem + ". Set " + role.key +
              " to a readable file holding " + role.what + ".");
}

// Fails with a plain-language reason when the file is unset, missing or unreadable, before OpenSSL sees it.
void require_readable(const FileRole& role, const std::filesystem::path& file) {
  if (file.empty()) {
    throw Error("TLS " + std::string(role.key) + " is not set. Set " + role.key + " to a readable file holding " +
                role.what + ".");
  }
  std::ifstream probe(file, std::ios::binary);
  if (!probe) fail(role, file, std::string("cannot be read (") + std::strerror(errno) + ")");
}

// TLS 1.3 only. Also: an idle connection gives its record buffers back (about 34 KB each), which a daemon with a
// thousand connections waiting between messages notices.
void set_tls13_only(ssl::context& ctx) {
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.native_handle(), TLS1_3_VERSION) != 1) {
    throw Error("TLS: cannot restrict the context to TLS 1.3: " + openssl_errors());
  }
  SSL_CTX_set_mode(ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);
}

void load_ca(ssl::context& ctx, const std::filesystem::path& ca_file) {
  require_readable(kCa, ca_file);
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx.native_handle(), ca_file.c_str(), nullptr) != 1) {
    fail(kCa, ca_file, "holds no usable certificate (" + openssl_errors() + ")");
  }
}

// Every CRL in the file goes into the verification store, and the store checks each client certificate (the
// leaf) against them: a revoked certificate, or one whose CA's CRL is missing or out of date, fails.
void load_crls(ssl::context& ctx, const std::filesystem::path& crl_file) {
  require_readable(kCrl, crl_file);
  ERR_clear_error();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(crl_file.c_str(), "r"), BIO_free);
  if (!bio) fail(kCrl, crl_file, "cannot be opened (" + openssl_errors() + ")");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.native_handle());
  int loaded = 0;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
    const int added = X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    if (added != 1) fail(kCrl, crl_file, "holds a CRL the store refuses (" + openssl_errors() + ")");
    ++loaded;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (loaded == 0) fail(kCrl, crl_file, "holds no PEM CRL");
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
}

int refuse_passphrase(char*, int, int, void*) {
  return 0;
}

// Loads cert_file (with any intermediates) and key_file, and checks that they belong together.
void load_identity(ssl::context& ctx, const std::filesystem::path& cert_file, const std::filesystem::path& key_file) {
  require_readable(kCert, cert_file);
  require_readable(kKey, key_file);
  SSL_CTX* native = ctx.native_handle();

  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1) {
    fail(kCert, cert_file, "is not a PEM certificate (" + openssl_errors() + ")");
  }

  ERR_clear_error();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(key_file.c_str(), "r"), &BIO_free);
  if (!bio) fail(kKey, key_file, "cannot be opened (" + openssl_errors() + ")");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, &refuse_passphrase, nullptr), &EVP_PKEY_free);
  if (!key) fail(kKey, key_file, "is not an unencrypted PEM private key (" + openssl_errors() + ")");

  X509* cert = SSL_CTX_get0_certificate(native);
  if (!cert || X509_check_private_key(cert, key.get()) != 1) {
    ERR_clear_error();
    throw Error("TLS key_file '" + key_file.string() + "' is not the private key of the certificate in cert_file '" +
                cert_file.string() + "'. Point key_file and cert_file at a matching pair.");
  }
  ERR_clear_error();
  if (SSL_CTX_use_PrivateKey(native, key.get()) != 1 || SSL_CTX_check_private_key(native) != 1) {
    fail(kKey, key_file, "cannot be used with cert_file '" + cert_file.string() + "' (" + openssl_errors() + ")");
  }
}

ssl::context client_context(const TlsClientOptions& options) {
  ssl::context ctx(ssl::context::tls_client);
  load_ca(ctx, options.ca_file);
  ctx.set_verify_mode(ssl::verify_peer);
  if (!options.cert_file.empty() || !options.key_file.empty()) {
    load_identity(ctx, options.cert_file, options.key_file);
  }
  return ctx;
}

}  // namespace

ssl::context make_server_context(const TlsServerOptions& options) {
  ssl::context ctx(ssl::context::tls_server);
  set_tls13_only(ctx);
  load_identity(ctx, options.cert_file, options.key_file);
  load_ca(ctx, options.ca_file);
  if (!options.crl_file.empty()) load_crls(ctx, options.crl_file);
  if (options.client_certificate != ClientCertificate::kNotRequested) {
    // Tell clients which CA we accept and verify what they send; without kRequired, token clients pass without one.
    ERR_clear_error();
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.ca_file.c_str());
    if (!names) fail(kCa, options.ca_file, "holds no CA certificate (" + openssl_errors() + ")");
    SSL_CTX_set_client_CA_list(ctx.native_handle(), names);  // takes ownership
    ctx.set_verify_mode(options.client_certificate == ClientCertificate::kRequired
                            ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                            : ssl::verify_peer);
  } else {
    ctx.set_verify_mode(ssl::verify_none);
  }
  return ctx;
}

ssl::context make_client_context(const TlsClientOptions& options) {
  ssl::context ctx = client_context(options);
  set_tls13_only(ctx);
  return ctx;
}

ssl::context make_tls12_only_client_context(const TlsClientOptions& options) {
  ssl::context ctx = client_context(options);
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    throw Error("TLS: cannot restrict the context to TLS 1.2: " + openssl_errors());
  }
  return ctx;
}

void expect_server_name(TlsStream& stream, const std::string& host) {
  if (host.empty()) throw Error("TLS: the server name to verify is empty; configure the aggregator's host name");
  SSL* native = stream.native_handle();
  ERR_clear_error();
  boost::system::error_code not_ip;
  boost::asio::ip::make_address(host, not_ip);
  if (not_ip) {
    if (SSL_set_tlsext_host_name(native, host.c_str()) != 1 || SSL_set1_host(native, host.c_str()) != 1) {
      throw Error("TLS: cannot expect server name '" + host + "': " + openssl_errors());
    }
    SSL_set_hostflags(native, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), host.c_str()) != 1) {
    throw Error("TLS: cannot expect server address '" + host + "': " + openssl_errors());
  }
}

std::string peer_common_name(const TlsStream& stream) {
  // Asio offers native_handle() only on a mutable stream; nothing here modifies it.
  SSL* native = const_cast<TlsStream&>(stream).native_handle();
  X509* cert = SSL_get0_peer_certificate(native);
  if (!cert || SSL_get_verify_result(native) != X509_V_OK) return {};
  X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return {};
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
  if (length < 0) return {};
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  // A CN with an embedded NUL could pass for a shorter one in later comparisons: treat it as no name at all.
  return cn.find('\0') == std::string::npos ? cn : std::string();
}

}  // namespace sotto::net
