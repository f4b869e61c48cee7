// naive_wspp_server: the baseline of the benchmarks: what a plain websocketpp
// broadcast loop does, with none of wshub's design. Every publish is turned
// into one text and handed to each subscriber with endpoint.send(hdl, text),
// so websocketpp builds (and copies) the frame once PER RECIPIENT; no shared
// prepared frame, no queue accounting, no eviction. It speaks just enough of
// the protocol subset for wshub_loadgen and bench/peers/check_peer.mjs:
// welcome; subscribe/unsubscribe with an optional id (ack); publish (message
// to every subscriber of the channel, ack when it has an id). Requests are
// recognised by string search, which is fine for the load generator's frames
// and nothing else.
//
//   naive_wspp_server --port 0        prints "listening on http://127.0.0.1:PORT/"
//
// One thread runs the io_context (websocketpp's asio_no_tls config, as a
// first-time user would write it).
#include <csignal>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <asio/signal_set.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

namespace {

using Server = websocketpp::server<websocketpp::config::asio>;
using websocketpp::connection_hdl;

// The value of "key":"<value>" in a frame, or empty.
std::string_view string_field(std::string_view frame, std::string_view key) {
    const std::string needle = "\"" + std::string(key) + "\":\"";
    const auto at = frame.find(needle);
    if (at == std::string_view::npos) return {};
    const auto start = at + needle.size();
    const auto end = frame.find('"', start);
    return end == std::string_view::npos ? std::string_view() : frame.substr(start, end - start);
}

// The raw value of "id": (a number or a string), or empty.
std::string_view id_field(std::string_view frame) {
    const auto at = frame.find("\"id\":");
    if (at == std::string_view::npos) return {};
    const auto start = at + 5;
    auto end = start;
    if (end < frame.size() && frame[end] == '"') {
        end = frame.find('"', end + 1);
        if (end == std::string_view::npos) return {};
        ++end;
    } else {
        while (end < frame.size() && frame[end] != ',' && frame[end] != '}') ++end;
    }
    return frame.substr(start, end - start);
}

// The raw JSON after "data": up to the frame's closing brace (data is last in the
// load generator's publishes; with an id after it, the id is cut off).
std::string_view data_field(std::string_view frame) {
    const auto at = frame.find("\"data\":");
    if (at == std::string_view::npos || frame.empty()) return {};
    auto data = frame.substr(at + 7, frame.size() - at - 8);
    if (const auto id = data.rfind(",\"id\":"); id != std::string_view::npos && data.back() != '}') {
        data = data.substr(0, id);
    }
    return data;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    CLI::App app{"naive_wspp_server: a plain websocketpp broadcast loop, the benchmarks' baseline"};
    app.add_option("--host", host, "Address to listen on")->capture_default_str();
    app.add_option("--port", port, "TCP port; 0 picks a free one")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    Server server;
    server.clear_access_channels(websocketpp::log::alevel::all);
    server.clear_error_channels(websocketpp::log::elevel::all);
    server.init_asio();
    server.set_reuse_addr(true);

    std::map<std::string, std::set<connection_hdl, std::owner_less<connection_hdl>>> channels;
    std::map<connection_hdl, std::set<std::string>, std::owner_less<connection_hdl>> joined;
    unsigned long next_id = 0;

    server.set_open_handler([&](connection_hdl hdl) {
        joined[hdl];
        server.send(hdl, "{\"type\":\"welcome\",\"connection\":\"naive-" + std::to_string(++next_id) +
                             "\",\"instance\":\"naive\"}",
                    websocketpp::frame::opcode::text);
    });
    server.set_close_handler([&](connection_hdl hdl) {
        for (const auto& channel : joined[hdl]) channels[channel].erase(hdl);
        joined.erase(hdl);
    });
    server.set_message_handler([&](connection_hdl hdl, Server::message_ptr msg) {
        const std::string& frame = msg->get_payload();
        const auto type = string_field(frame, "type");
        const auto channel = std::string(string_field(frame, "channel"));
        const auto id = id_field(frame);
        std::error_code ignored;
        if (type == "subscribe" || type == "unsubscribe") {
            if (type == "subscribe") {
                channels[channel].insert(hdl);
                joined[hdl].insert(channel);
            } else {
                channels[channel].erase(hdl);
                joined[hdl].erase(channel);
            }
        } else if (type == "publish") {
            // The naive part: one text, sent to each subscriber on its own.
            const std::string out =
                "{\"type\":\"message\",\"channel\":\"" + channel + "\",\"data\":" + std::string(data_field(frame)) + "}";
            for (const auto& subscriber : channels[channel]) {
                server.send(subscriber, out, websocketpp::frame::opcode::text, ignored);
            }
        } else {
            server.send(hdl, "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"unknown request\"}",
                        websocketpp::frame::opcode::text, ignored);
            return;
        }
        if (!id.empty()) {
            server.send(hdl, "{\"type\":\"ack\",\"id\":" + std::string(id) + "}", websocketpp::frame::opcode::text,
                        ignored);
        }
    });

    std::error_code ec;
    server.listen(asio::ip::tcp::endpoint(asio::ip::make_address(host), port), ec);
    if (ec) {
        std::cerr << "cannot listen: " << ec.message() << '\n';
        return 1;
    }
    server.start_accept();
    const auto local = server.get_local_endpoint(ec);
    std::cout << "listening on http://" << host << ":" << local.port() << "/" << std::endl;

    asio::signal_set signals(server.get_io_service(), SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) {
        std::error_code e;
        server.stop_listening(e);
        server.stop();
    });
    server.run();
    return 0;
}
