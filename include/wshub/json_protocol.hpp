// wshub/json_protocol.hpp: JsonProtocol, the default protocol policy (wire
// protocol v1, described for client authors in docs/protocol.md).
//
// A protocol policy is what the hub uses to read client frames and to write
// server frames; the hub itself never looks at the wire format. The policy is a
// type with only static members, required to provide:
//
//     concept Protocol {
//         // Turns one client text frame into a ClientRequest, or a DecodeError
//         // whose message is safe to send back (it never echoes the frame's
//         // bytes) and whose id is the request's raw id when it could be read.
//         // Must accept any bytes at all, take time linear in the frame's size
//         // (whatever its nesting), and throw nothing but std::bad_alloc.
//         // The request's string_views point into `frame`.
//         static DecodeResult decode(std::string_view frame, const DecodeLimits& limits);
//
//         // Each returns one complete text frame. Text arguments are escaped as
//         // the format needs; raw_id and raw_data are wire tokens taken from a
//         // decoded request (ClientRequest::id, ClientRequest::data) and are
//         // copied verbatim, never re-encoded.
//         static std::string welcome(std::string_view connection, std::string_view instance);
//         static std::string ack(std::string_view raw_id);
//         static std::string subscribe_ack(std::string_view raw_id, bool recovered,
//                                          std::optional<std::uint64_t> offset, std::string_view epoch);
//         static std::string presence_ack(std::string_view raw_id, const std::vector<PresenceMember>& members);
//         static std::string error_frame(std::string_view raw_id, error code, std::string_view message);
//         static std::string message(std::string_view channel, std::string_view raw_data);
//         static std::string message(std::string_view channel, std::string_view raw_data,
//                                    std::uint64_t offset, std::string_view epoch);
//         static std::string direct(std::string_view from, std::string_view raw_data);
//         static std::string gap(std::string_view channel);
//         // user: the connection's user id; empty for anonymous (then left out).
//         static std::string join(std::string_view channel, std::string_view connection, std::string_view user);
//         static std::string leave(std::string_view channel, std::string_view connection, std::string_view user);
//     };
//
// JsonProtocol implements Protocol for JSON text frames.
//
// Decoding runs on our own scanner (detail/json_scanner.hpp) and never on
// RapidJSON: the RapidJSON that distributions ship (1.1.0) has an unpatched
// memory-safety bug in its number parser (CVE-2024-38517) and rejects valid
// numbers such as 1e400, so untrusted numbers must not reach it. Encoding uses
// RapidJSON's Writer, which only ever sees our own strings and integers, for
// its string escaping.
//
// Thread safety: stateless, every member is static; safe to call from any
// thread at the same time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/allocators.h>
#include <rapidjson/writer.h>

#include "wshub/connection_info.hpp"
#include "wshub/detail/json_scanner.hpp"
#include "wshub/detail/utf8.hpp"
#include "wshub/error.hpp"
#include "wshub/request.hpp"

namespace wshub {

struct DecodeResult {
    std::optional<ClientRequest> request;  // set on success
    DecodeError error;                     // meaningful when !request
    bool ok() const noexcept { return request.has_value(); }
};

namespace detail {

// A RapidJSON output stream that appends straight to the frame's std::string,
// so the encoded frame is never copied out of an intermediate buffer.
class StringOutputStream {
public:
    using Ch = char;

    explicit StringOutputStream(std::string& out) noexcept : out_(&out) {}

    void Put(char c) { out_->push_back(c); }
    void Flush() noexcept {}
    // Callers reserve the frame's expected size once, so that writing it costs one allocation.
    void reserve(std::size_t capacity) { out_->reserve(capacity); }

private:
    std::string* out_;
};

// RapidJSON's Writer with its level stack in a buffer inside this object: our
// frames nest at most two levels, so encoding allocates nothing but the output.
class FrameWriter {
public:
    explicit FrameWriter(std::string& out)
        : stream_(out), allocator_(stack_buffer_, sizeof stack_buffer_), writer_(stream_, &allocator_, max_levels) {}

    FrameWriter(const FrameWriter&) = delete;
    FrameWriter& operator=(const FrameWriter&) = delete;

    void reserve(std::size_t capacity) { stream_.reserve(capacity); }

    void start_object() { writer_.StartObject(); }
    void end_object() { writer_.EndObject(); }
    void start_array() { writer_.StartArray(); }
    void end_array() { writer_.EndArray(); }

    // Keys are our own ASCII literals; they need no check.
    void key(std::string_view name) { writer_.Key(name.data(), size_of(name)); }

    // A key that is not ours (a connection id used as a map key): escaped and
    // made valid UTF-8 like any string (RapidJSON writes keys as strings).
    void key_string(std::string_view text) { string(text); }

    // Writes `text` as a JSON string. A string that is not valid UTF-8 (a bug or
    // a misconfigured name upstream) gets U+FFFD for its bad bytes rather than
    // producing a frame that browsers would refuse.
    void string(std::string_view text) {
        if (is_valid_utf8(text)) {
            writer_.String(text.data(), size_of(text));
        } else {
            const std::string fixed = to_valid_utf8(text);
            writer_.String(fixed.data(), size_of(fixed));
        }
    }

    // Copies one complete JSON value verbatim.
    void raw(std::string_view json) { writer_.RawValue(json.data(), json.size(), raw_type(json)); }

    void uint64(std::uint64_t value) { writer_.Uint64(value); }
    void boolean(bool value) { writer_.Bool(value); }

private:
    static constexpr std::size_t max_levels = 4;

    static rapidjson::SizeType size_of(std::string_view text) {
        if (text.size() > std::numeric_limits<rapidjson::SizeType>::max()) {
            throw std::length_error("wshub: string too long for a frame");
        }
        return static_cast<rapidjson::SizeType>(text.size());
    }

    // RapidJSON only uses the type to check it is not given a value where a key
    // belongs; naming it honestly costs one byte comparison.
    static rapidjson::Type raw_type(std::string_view json) noexcept {
        switch (json.empty() ? '\0' : json.front()) {
            case '{': return rapidjson::kObjectType;
            case '[': return rapidjson::kArrayType;
            case '"': return rapidjson::kStringType;
            case 't': return rapidjson::kTrueType;
            case 'f': return rapidjson::kFalseType;
            case 'n': return rapidjson::kNullType;
            default: return rapidjson::kNumberType;
        }
    }

    using Writer = rapidjson::Writer<StringOutputStream, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                     rapidjson::MemoryPoolAllocator<>>;

    StringOutputStream stream_;
    // 256 bytes hold the pool's chunk header and max_levels levels with room to spare.
    alignas(std::max_align_t) char stack_buffer_[256];
    rapidjson::MemoryPoolAllocator<> allocator_;
    Writer writer_;
};

// Where decode() keeps a top-level member it knows.
struct KnownField {
    std::string_view value;
    JsonKind kind = JsonKind::null;
    bool present = false;
    bool duplicate = false;

    void record(const JsonMember& member) noexcept {
        if (present) {
            duplicate = true;
            return;
        }
        value = member.value;
        kind = member.kind;
        present = true;
    }
};

// Whether two of `keys` are equal (sorts them). Sorting keeps the worst case at
// O(n log n) whatever keys a client chooses, which a hash set would not.
inline bool has_duplicate(std::vector<std::string>& keys) {
    if (keys.size() < 2) return false;
    std::sort(keys.begin(), keys.end());
    return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

// "-?digits": a JSON number token without fraction or exponent.
inline bool is_integer_token(std::string_view number) noexcept {
    return number.find_first_of(".eE") == std::string_view::npos;
}

// Parses a token of decimal digits only (no sign); nullopt if it has anything
// else or does not fit in 64 bits.
inline std::optional<std::uint64_t> parse_uint64(std::string_view digits) noexcept {
    if (digits.empty()) return std::nullopt;
    std::uint64_t value = 0;
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    for (const char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (max - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

}  // namespace detail

// The default protocol policy; see the concept above and docs/protocol.md.
class JsonProtocol {
public:
    // Longest id accepted, in bytes of its raw token (quotes and escapes included):
    // an id is echoed in every reply, so it must stay small.
    static constexpr std::size_t max_string_id_size = 256;
    // Longest integer id token: enough for any 64-bit integer with its sign.
    static constexpr std::size_t max_integer_id_size = 20;

    static DecodeResult decode(std::string_view frame, const DecodeLimits& limits) {
        using detail::JsonKind;
        using detail::KnownField;

        KnownField type, id, channel, to, data, since;
        std::vector<std::string> other_keys;  // unknown keys, kept only to find duplicates among them

        detail::JsonScanner scanner(frame, limits.max_nesting_depth);
        detail::JsonMember member;
        if (scanner.begin_object()) {
            while (scanner.next_member(member)) {
                if (KnownField* field = known_field(member.key, type, id, channel, to, data, since)) {
                    field->record(member);
                } else {
                    other_keys.push_back(std::move(member.key));
                }
            }
        }
        if (scanner.error() != detail::ScanError::none) {
            return failure(scan_error_message(frame, scanner, limits));
        }

        // The frame is a well-formed object: from here on every error echoes the
        // id, if it has a usable one, so the client can match it to its request.
        std::string_view raw_id;
        if (id.present) {
            if (id.duplicate) return failure("duplicate key \"id\"");
            if (id.kind == JsonKind::string) {
                if (id.value.size() > max_string_id_size) return failure("\"id\" is longer than 256 bytes");
            } else if (id.kind != JsonKind::number || !detail::is_integer_token(id.value)) {
                return failure("\"id\" must be a string or an integer");
            } else if (id.value.size() > max_integer_id_size) {
                return failure("\"id\" is longer than 20 characters");
            }
            raw_id = id.value;
        }

        // Keys are compared decoded, so "type" and "\u0074ype" are the same key:
        // two readers of one frame must never disagree about what it says.
        for (const auto& [name, field] : {std::pair<const char*, const KnownField*>{"type", &type},
                                          {"channel", &channel}, {"to", &to}, {"data", &data}, {"since", &since}}) {
            if (field->duplicate) return failure(std::string("duplicate key \"") + name + "\"", raw_id);
        }
        if (detail::has_duplicate(other_keys)) return failure("duplicate key", raw_id);

        if (!type.present) return failure("missing \"type\"", raw_id);
        if (type.kind != JsonKind::string) return failure("\"type\" must be a string", raw_id);
        const std::optional<RequestType> request_type = parse_type(type.value);
        if (!request_type) return failure("unknown type", raw_id);

        ClientRequest request;
        request.type = *request_type;
        request.id = raw_id;
        std::string problem;
        switch (*request_type) {
            case RequestType::subscribe:
                if (!read_string(channel, "channel", request.channel, problem)) break;
                if (since.present) read_since(since.value, limits, request.since, problem);
                break;
            case RequestType::unsubscribe:
            case RequestType::presence:
                read_string(channel, "channel", request.channel, problem);
                break;
            case RequestType::publish:
                if (read_string(channel, "channel", request.channel, problem)) read_data(data, request.data, problem);
                break;
            case RequestType::send:
                if (read_string(to, "to", request.to, problem)) read_data(data, request.data, problem);
                break;
        }
        if (!problem.empty()) return failure(std::move(problem), raw_id);

        DecodeResult result;
        result.request = std::move(request);
        return result;
    }

    static std::string welcome(std::string_view connection, std::string_view instance) {
        std::string out;
        detail::FrameWriter w(out);
        w.reserve(48 + connection.size() + instance.size());
        w.start_object();
        w.key("type");
        w.string("welcome");
        w.key("connection");
        w.string(connection);
        w.key("instance");
        w.string(instance);
        w.end_object();
        return out;
    }

    // {"type":"ack","id":<raw_id>}. An empty raw_id (a request without id,
    // which should get no ack) leaves "id" out rather than writing bad JSON.
    static std::string ack(std::string_view raw_id) {
        std::string out;
        detail::FrameWriter w(out);
        w.reserve(24 + raw_id.size());
        start_ack(w, raw_id);
        w.end_object();
        return out;
    }

    // The ack of a subscribe: "recovered" says whether the messages after `since`
    // were replayed; "offset"/"epoch" (when `offset` is set) are the channel's
    // current history position, for the client's next resubscribe.
    static std::string subscribe_ack(std::string_view raw_id, bool recovered, std::optional<std::uint64_t> offset,
                                     std::string_view epoch) {
        std::string out;
        detail::FrameWriter w(out);
        w.reserve(96 + raw_id.size() + epoch.size());
        start_ack(w, raw_id);
        w.key("recovered");
        w.boolean(recovered);
        if (offset) {
            w.key("offset");
            w.uint64(*offset);
            w.key("epoch");
            w.string(epoch);
        }
        w.end_object();
        return out;
    }

    // {"type":"ack","id":..,"members":["conn",..],"users":{"conn":"user",..}}:
    // members lists connection ids (the protocol's contract); users maps the
    // ones that have a user id to it (anonymous connections are left out).
    static std::string presence_ack(std::string_view raw_id, const std::vector<PresenceMember>& members) {
        std::size_t size = 52 + raw_id.size();
        for (const auto& m : members) size += 2 * m.connection.size() + m.user.size() + 8;
        std::string out;
        detail::FrameWriter w(out);
        w.reserve(size);
        start_ack(w, raw_id);
        w.key("members");
        w.start_array();
        for (const auto& m : members) w.string(m.connection);
        w.end_array();
        w.key("users");
        w.start_object();
        for (const auto& m : members) {
            if (m.user.empty()) continue;
            w.key_string(m.connection);
            w.string(m.user);
        }
        w.end_object();
        w.end_object();
        return out;
    }

    // {"type":"error","id":<raw_id>,"code":"...","message":"..."}; "id" is left
    // out when raw_id is empty (the request had none, or it was unreadable).
    static std::string error_frame(std::string_view raw_id, error code, std::string_view message) {
        const std::string_view code_text = protocol_code(code);
        std::string out;
        detail::FrameWriter w(out);
        w.reserve(48 + raw_id.size() + code_text.size() + message.size());
        w.start_object();
        w.key("type");
        w.string("error");
        if (!raw_id.empty()) {
            w.key("id");
            w.raw(raw_id);
        }
        w.key("code");
        w.string(code_text);
        w.key("message");
        w.string(message);
        w.end_object();
        return out;
    }

    // The fan-out hot path: encoded once per publish and shared by every
    // subscriber. The reservation is the exact size when the channel needs no
    // escaping (valid channel names never do), so this is one allocation.
    static std::string message(std::string_view channel, std::string_view raw_data) {
        std::string out;
        detail::FrameWriter w(out);
        // {"type":"message","channel":"  "  ,"data":  }
        w.reserve(29 + channel.size() + 9 + raw_data.size() + 1);
        start_message(w, channel, raw_data);
        w.end_object();
        return out;
    }

    static std::string message(std::string_view channel, std::string_view raw_data, std::uint64_t offset,
                               std::string_view epoch) {
        std::string out;
        detail::FrameWriter w(out);
        // As above plus ,"offset":<up to 20 digits>,"epoch":"<epoch>"
        w.reserve(29 + channel.size() + 9 + raw_data.size() + 10 + 20 + 10 + epoch.size() + 1 + 1);
        start_message(w, channel, raw_data);
        w.key("offset");
        w.uint64(offset);
        w.key("epoch");
        w.string(epoch);
        w.end_object();
        return out;
    }

    static std::string direct(std::string_view from, std::string_view raw_data) {
        std::string out;
        detail::FrameWriter w(out);
        // {"type":"direct","from":"  ","data":  }
        w.reserve(25 + from.size() + 9 + raw_data.size() + 1);
        w.start_object();
        w.key("type");
        w.string("direct");
        w.key("from");
        w.string(from);
        w.key("data");
        w.raw(raw_data);
        w.end_object();
        return out;
    }

    static std::string gap(std::string_view channel) {
        std::string out;
        detail::FrameWriter w(out);
        w.reserve(32 + channel.size());
        w.start_object();
        w.key("type");
        w.string("gap");
        w.key("channel");
        w.string(channel);
        w.end_object();
        return out;
    }

    static std::string join(std::string_view channel, std::string_view connection, std::string_view user = {}) {
        return presence_event("join", channel, connection, user);
    }

    static std::string leave(std::string_view channel, std::string_view connection, std::string_view user = {}) {
        return presence_event("leave", channel, connection, user);
    }

private:
    static DecodeResult failure(std::string message, std::string_view raw_id = {}) {
        DecodeResult result;
        result.error.code = error::bad_request;
        result.error.message = std::move(message);
        result.error.id = raw_id;
        return result;
    }

    static detail::KnownField* known_field(std::string_view key, detail::KnownField& type, detail::KnownField& id,
                                           detail::KnownField& channel, detail::KnownField& to,
                                           detail::KnownField& data, detail::KnownField& since) noexcept {
        if (key == "type") return &type;
        if (key == "id") return &id;
        if (key == "channel") return &channel;
        if (key == "to") return &to;
        if (key == "data") return &data;
        if (key == "since") return &since;
        return nullptr;
    }

    // Positions in the text are safe to report; the text itself is not.
    static std::string scan_error_message(std::string_view frame, const detail::JsonScanner& scanner,
                                          const DecodeLimits& limits) {
        using detail::ScanError;
        switch (scanner.error()) {
            case ScanError::not_an_object: return "frame must be a JSON object";
            case ScanError::too_deep:
                return "frame nests deeper than " + std::to_string(limits.max_nesting_depth) + " levels";
            case ScanError::unexpected_end:
                if (frame.find_first_not_of(" \t\r\n") == std::string_view::npos) return "empty frame";
                break;
            default: break;
        }
        return "invalid JSON: " + std::string(describe(scanner.error())) + " at byte " +
               std::to_string(scanner.error_offset());
    }

    static std::optional<RequestType> parse_type(std::string_view token) {
        const std::optional<std::string> name = detail::decode_json_string(token);
        if (!name) return std::nullopt;
        if (*name == "subscribe") return RequestType::subscribe;
        if (*name == "unsubscribe") return RequestType::unsubscribe;
        if (*name == "publish") return RequestType::publish;
        if (*name == "send") return RequestType::send;
        if (*name == "presence") return RequestType::presence;
        return std::nullopt;
    }

    // A required string field; on failure sets `problem` and returns false.
    static bool read_string(const detail::KnownField& field, const char* name, std::string& out,
                            std::string& problem) {
        if (!field.present) {
            problem = std::string("missing \"") + name + "\"";
            return false;
        }
        if (field.kind != detail::JsonKind::string) {
            problem = std::string("\"") + name + "\" must be a string";
            return false;
        }
        std::optional<std::string> decoded = detail::decode_json_string(field.value);
        if (!decoded) {
            problem = std::string("\"") + name + "\" holds an unpaired surrogate escape";
            return false;
        }
        out = std::move(*decoded);
        return true;
    }

    static bool read_data(const detail::KnownField& field, std::string_view& out, std::string& problem) {
        if (!field.present) {
            problem = "missing \"data\"";
            return false;
        }
        out = field.value;
        return true;
    }

    // "since": {"offset": <non-negative integer>, "epoch": <string>}. Unknown
    // keys inside are ignored, like at the top level; duplicates are not.
    static bool read_since(std::string_view value, const DecodeLimits& limits, std::optional<SincePosition>& out,
                           std::string& problem) {
        using detail::JsonKind;
        static const char* const shape = "\"since\" must be {\"offset\": <non-negative integer>, \"epoch\": <string>}";

        detail::KnownField offset, epoch;
        detail::JsonScanner scanner(value, limits.max_nesting_depth);
        detail::JsonMember member;
        if (!scanner.begin_object()) {
            problem = shape;
            return false;
        }
        std::vector<std::string> other_keys;
        while (scanner.next_member(member)) {
            if (member.key == "offset") {
                offset.record(member);
            } else if (member.key == "epoch") {
                epoch.record(member);
            } else {
                other_keys.push_back(std::move(member.key));
            }
        }
        // The frame's scan already accepted this text, so an error here cannot
        // happen; if it somehow did, the value is still not a valid "since".
        if (scanner.error() != detail::ScanError::none) {
            problem = shape;
            return false;
        }
        if (offset.duplicate || epoch.duplicate || detail::has_duplicate(other_keys)) {
            problem = "duplicate key in \"since\"";
            return false;
        }
        if (!offset.present || !epoch.present || offset.kind != JsonKind::number || epoch.kind != JsonKind::string) {
            problem = shape;
            return false;
        }
        // Digits only: a sign, a fraction or an exponent is not an offset.
        if (offset.value.find_first_not_of("0123456789") != std::string_view::npos) {
            problem = shape;
            return false;
        }
        const std::optional<std::uint64_t> parsed = detail::parse_uint64(offset.value);
        if (!parsed) {
            problem = "\"since.offset\" does not fit in 64 bits";
            return false;
        }
        std::optional<std::string> epoch_text = detail::decode_json_string(epoch.value);
        if (!epoch_text) {
            problem = "\"since.epoch\" holds an unpaired surrogate escape";
            return false;
        }
        out = SincePosition{*parsed, std::move(*epoch_text)};
        return true;
    }

    static void start_ack(detail::FrameWriter& w, std::string_view raw_id) {
        w.start_object();
        w.key("type");
        w.string("ack");
        if (!raw_id.empty()) {
            w.key("id");
            w.raw(raw_id);
        }
    }

    static void start_message(detail::FrameWriter& w, std::string_view channel, std::string_view raw_data) {
        w.start_object();
        w.key("type");
        w.string("message");
        w.key("channel");
        w.string(channel);
        w.key("data");
        w.raw(raw_data);
    }

    static std::string presence_event(std::string_view type, std::string_view channel, std::string_view connection,
                                      std::string_view user) {
        std::string out;
        detail::FrameWriter w(out);
        w.reserve(60 + channel.size() + connection.size() + user.size());
        w.start_object();
        w.key("type");
        w.string(type);
        w.key("channel");
        w.string(channel);
        w.key("connection");
        w.string(connection);
        if (!user.empty()) {
            w.key("user");
            w.string(user);
        }
        w.end_object();
        return out;
    }
};

}  // namespace wshub
