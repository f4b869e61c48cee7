// wshub/wshub.hpp: everything a user of wshub includes.
//
// The Hub and its policies, the concepts a Transport and a PubSub satisfy,
// the in-process LocalPubSub and the default JSON protocol. Transports and
// backends with heavier dependencies (websocketpp, hiredis) have headers of
// their own.
#pragma once

#include "wshub/authorizer.hpp"
#include "wshub/connection_info.hpp"
#include "wshub/error.hpp"
#include "wshub/frame.hpp"
#include "wshub/hub.hpp"
#include "wshub/hub_config.hpp"
#include "wshub/hub_stats.hpp"
#include "wshub/json_protocol.hpp"
#include "wshub/local_pubsub.hpp"
#include "wshub/logger.hpp"
#include "wshub/pubsub_concept.hpp"
#include "wshub/request.hpp"
#include "wshub/slow_client_policy.hpp"
#include "wshub/transport_concept.hpp"
