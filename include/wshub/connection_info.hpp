// wshub/connection_info.hpp: who a connection is, as the transport saw it at the handshake.
//
// Thread safety: plain values. The hub keeps its copy on its strand.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace wshub {

// A transport's local handle for one connection: unique for the transport's
// lifetime, never reused, never 0. The hub derives the connection's public id
// (what clients see in `welcome` and use in `send`) from it and the instance id.
using ConnectionId = std::uint64_t;

struct ConnectionInfo {
    std::string user_id;                        // from the authentication hook; empty for anonymous
    std::map<std::string, std::string> claims;  // from the authentication hook; never logged
    std::string remote_address;                 // "ip:port" of the peer, for logs
};

// One member of a presence channel: a connection, and its user when it has one.
struct PresenceMember {
    std::string connection;  // public id
    std::string user;        // empty for anonymous
};

}  // namespace wshub
