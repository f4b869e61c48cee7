// wshub/authorizer.hpp: the authorizer policy decides who may subscribe,
// publish and send. A refusal answers the client with `forbidden`.
//
// An authorizer is a type with these members (called on the hub's strand):
//
//   bool can_subscribe(const ConnectionInfo& who, std::string_view channel);
//   bool can_publish(const ConnectionInfo& who, std::string_view channel);
//   bool can_send(const ConnectionInfo& who, std::string_view to_connection);
//
// `who` carries the user id and claims that the transport's authentication
// hook attached at the handshake.
//
// Thread safety: the hub calls its authorizer from its strand only.
#pragma once

#include <string_view>

#include "wshub/connection_info.hpp"

namespace wshub {

// Default: every connection may do everything.
struct AllowAll {
    bool can_subscribe(const ConnectionInfo&, std::string_view) const noexcept { return true; }
    bool can_publish(const ConnectionInfo&, std::string_view) const noexcept { return true; }
    bool can_send(const ConnectionInfo&, std::string_view) const noexcept { return true; }
};

}  // namespace wshub
