// read_update_stream: an update's chunks after its header (UpdateUpload), reassembled into parameters laid out as
// the header's manifest says, within a byte cap: the model's size in a plain round, the masked input's in a secure
// one. A manifest that does not parse or exceeds the cap, a frame that is not the next chunk, or a chunk that does
// not fit comes back as a Refusal; nothing throws for what the peer sent.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "aggregator/connection.h"
#include "aggregator/refusal.h"
#include "common/model/parameters.h"

namespace sotto::aggregator {

struct UpdateStream {
  std::optional<model::ModelParameters> parameters;  // the whole update
  std::optional<Refusal> refusal;                    // why it was refused
  // Neither: the connection closed meanwhile.
};

boost::asio::awaitable<UpdateStream> read_update_stream(Connection& c, const v1::ModelManifest& manifest,
                                                        std::size_t max_bytes, std::string& buffer,
                                                        const std::function<void(std::size_t)>& count_received);

}  // namespace sotto::aggregator
