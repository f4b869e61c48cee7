// tests/support/raw_ws_client.hpp: a bare-socket WebSocket client that can
// misbehave on purpose: a tiny receive buffer, never reading, never answering
// pings. Blocking calls, for the test thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

namespace wshub::test {

class RawWsClient {
public:
    // Connects and completes the opening handshake; the receive buffer is set
    // before connecting so the kernel's window stays small.
    explicit RawWsClient(std::uint16_t port, int receive_buffer_bytes = 4096) : socket_(io_) {
        socket_.open(asio::ip::tcp::v4());
        socket_.set_option(asio::socket_base::receive_buffer_size(receive_buffer_bytes));
        socket_.connect({asio::ip::make_address("127.0.0.1"), port});
        const std::string request =
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        asio::write(socket_, asio::buffer(request));
        asio::streambuf response;
        asio::read_until(socket_, response, "\r\n\r\n");
        const std::string head(asio::buffers_begin(response.data()), asio::buffers_end(response.data()));
        upgraded_ = head.rfind("HTTP/1.1 101", 0) == 0;
    }

    bool upgraded() const noexcept { return upgraded_; }

    // Sends one masked text frame (clients must mask).
    void send_text(const std::string& text) { send_frame(0x81, text); }

    // Sends one masked ping (payload at most 125 bytes).
    void send_ping(const std::string& payload) { send_frame(0x89, payload); }

private:
    void send_frame(unsigned char first_byte, const std::string& text) {
        std::string frame;
        frame.push_back(static_cast<char>(first_byte));
        const std::array<unsigned char, 4> mask{0x12, 0x34, 0x56, 0x78};
        if (text.size() < 126) {
            frame.push_back(static_cast<char>(0x80 | text.size()));
        } else {
            frame.push_back(static_cast<char>(0x80 | 126));
            frame.push_back(static_cast<char>((text.size() >> 8) & 0xFF));
            frame.push_back(static_cast<char>(text.size() & 0xFF));
        }
        for (unsigned char m : mask) frame.push_back(static_cast<char>(m));
        for (std::size_t i = 0; i < text.size(); ++i) frame.push_back(static_cast<char>(text[i] ^ mask[i % 4]));
        asio::write(socket_, asio::buffer(frame));
    }

    asio::io_context io_;
    asio::ip::tcp::socket socket_;
    bool upgraded_ = false;
};

}  // namespace wshub::test
