// wshub/detail/json_scanner.hpp: an iterative, allocation-light JSON validator
// and the string-token decoder the protocol codec is built on.
//
// Why not RapidJSON's Reader: client frames are untrusted, and the RapidJSON
// that distributions ship (1.1.0) converts numbers while it parses, with a known
// memory-safety bug in that code (CVE-2024-38517) and spurious rejections of
// valid numbers such as 1e400. Our codec never needs a number's value except
// for a few integers it parses itself, so this scanner checks numbers by
// grammar only and never converts them.
//
// What it guarantees, for any input:
//   - the full RFC 8259 grammar: whitespace is space, tab, LF and CR only;
//     strings may hold only valid escapes and well-formed UTF-8, no raw byte
//     below 0x20; numbers match -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
//     at any length; literals are true, false and null;
//   - no recursion at all: nesting is tracked with an explicit bit stack and a
//     depth counter, and scanning stops as soon as the depth limit is passed,
//     so "[[[[..." costs about `max_depth` bytes of work whatever its length;
//   - O(n) time over the text, no allocation unless nesting passes 128 levels
//     (plus the decoded keys when walking an object).
//
// A string token that passed the scanner is grammatical but may still hold an
// escaped lone surrogate ("\ud800"): RFC 8259 allows it, so values keep it
// (they are forwarded untouched), while decode_json_string() refuses it
// because it cannot be turned into UTF-8.
//
// Thread safety: JsonScanner is a plain value used by one thread at a time;
// the free functions are pure and safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wshub/detail/utf8.hpp"

namespace wshub::detail {

enum class JsonKind : std::uint8_t { object, array, string, number, boolean, null };

enum class ScanError : std::uint8_t {
    none,
    unexpected_end,        // the text stopped before the value was complete
    unexpected_character,  // a byte the grammar does not allow at that place
    not_an_object,         // begin_object(): the top-level value is not an object
    control_character,     // a raw byte below 0x20 inside a string
    invalid_escape,        // a backslash not followed by a valid escape
    invalid_utf8,          // a string holds bytes that are not well-formed UTF-8
    invalid_number,        // a number that breaks the grammar ("01", "1.", ".5", "1e", "-")
    invalid_literal,       // something that starts like true/false/null but is not
    unpaired_surrogate,    // an object key whose \u escapes hold a lone surrogate
    too_deep,              // nesting deeper than the limit
    trailing_characters,   // something other than whitespace after the top-level value
};

// A short English description; it never includes bytes from the input.
constexpr std::string_view describe(ScanError error) noexcept {
    switch (error) {
        case ScanError::none: return "no error";
        case ScanError::unexpected_end: return "unexpected end of input";
        case ScanError::unexpected_character: return "unexpected character";
        case ScanError::not_an_object: return "not a JSON object";
        case ScanError::control_character: return "raw control character in a string";
        case ScanError::invalid_escape: return "invalid escape sequence in a string";
        case ScanError::invalid_utf8: return "invalid UTF-8 in a string";
        case ScanError::invalid_number: return "invalid number";
        case ScanError::invalid_literal: return "invalid literal";
        case ScanError::unpaired_surrogate: return "unpaired surrogate escape in a key";
        case ScanError::too_deep: return "nesting too deep";
        case ScanError::trailing_characters: return "unexpected characters after the JSON value";
    }
    return "invalid JSON";
}

namespace json_detail {

inline bool is_whitespace(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// The value of one hex digit, or -1.
inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Reads the four hex digits at text[pos..pos+4) into `unit`; false if any is missing or not hex.
inline bool read_hex4(std::string_view text, std::size_t pos, std::uint32_t& unit) noexcept {
    if (pos > text.size() || text.size() - pos < 4) return false;
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        const int digit = hex_value(text[pos + i]);
        if (digit < 0) return false;
        value = (value << 4) | static_cast<std::uint32_t>(digit);
    }
    unit = value;
    return true;
}

// One bit per open container (1 = object, 0 = array). The first 128 levels live
// inline so that ordinary documents never allocate; deeper levels, which only a
// generous limit allows, spill into a vector.
class ContainerStack {
public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    void push(bool is_object) {
        const std::size_t index = size_ / 64;
        if (index >= inline_words && spill_.size() < index - inline_words + 1) spill_.push_back(0);
        std::uint64_t& word = word_at(index);
        const std::uint64_t bit = std::uint64_t{1} << (size_ % 64);
        word = is_object ? (word | bit) : (word & ~bit);
        ++size_;
    }

    void pop() noexcept { --size_; }

    bool top_is_object() const noexcept {
        const std::size_t at = size_ - 1;
        return (word_at(at / 64) >> (at % 64)) & 1;
    }

private:
    static constexpr std::size_t inline_words = 2;

    std::uint64_t& word_at(std::size_t index) noexcept {
        return index < inline_words ? inline_[index] : spill_[index - inline_words];
    }
    const std::uint64_t& word_at(std::size_t index) const noexcept {
        return index < inline_words ? inline_[index] : spill_[index - inline_words];
    }

    std::uint64_t inline_[inline_words] = {};
    std::vector<std::uint64_t> spill_;
    std::size_t size_ = 0;
};

}  // namespace json_detail

// Decodes one JSON string token (including its quotes) to UTF-8: handles every
// escape and \u surrogate pairs. Returns nullopt when the token is not a single
// well-formed string or holds a lone surrogate escape, which has no UTF-8 form.
// Safe on any input, but meant for tokens the scanner already accepted.
inline std::optional<std::string> decode_json_string(std::string_view token) {
    using json_detail::read_hex4;
    if (token.size() < 2 || token.front() != '"' || token.back() != '"') return std::nullopt;
    const std::string_view body = token.substr(1, token.size() - 2);

    std::string out;
    out.reserve(body.size());
    const auto* const bytes = reinterpret_cast<const unsigned char*>(body.data());
    std::size_t i = 0;
    while (i < body.size()) {
        const unsigned char c = bytes[i];
        if (c == '"' || c < 0x20) return std::nullopt;
        if (c >= 0x80) {
            const std::size_t length = utf8_sequence_length(bytes + i, bytes + body.size());
            if (length == 0) return std::nullopt;
            out.append(body.data() + i, length);
            i += length;
            continue;
        }
        if (c != '\\') {
            // Copy the whole run up to the next byte that needs a look.
            std::size_t run = i + 1;
            while (run < body.size() && bytes[run] >= 0x20 && bytes[run] < 0x80 && bytes[run] != '"' &&
                   bytes[run] != '\\') {
                ++run;
            }
            out.append(body.data() + i, run - i);
            i = run;
            continue;
        }
        if (i + 1 >= body.size()) return std::nullopt;
        const char escape = body[i + 1];
        i += 2;
        switch (escape) {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '/': out.push_back('/'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                std::uint32_t unit = 0;
                if (!read_hex4(body, i, unit)) return std::nullopt;
                i += 4;
                if (unit >= 0xDC00 && unit <= 0xDFFF) return std::nullopt;  // a trail with no lead
                if (unit >= 0xD800 && unit <= 0xDBFF) {
                    std::uint32_t trail = 0;
                    if (i + 1 >= body.size() || body[i] != '\\' || body[i + 1] != 'u') return std::nullopt;
                    if (!read_hex4(body, i + 2, trail)) return std::nullopt;
                    if (trail < 0xDC00 || trail > 0xDFFF) return std::nullopt;
                    i += 6;
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (trail - 0xDC00);
                }
                append_utf8(out, unit);
                break;
            }
            default: return std::nullopt;
        }
    }
    return out;
}

// One member of the object being walked.
struct JsonMember {
    std::string key;         // decoded
    std::string_view value;  // the value's raw text, without surrounding whitespace
    JsonKind kind = JsonKind::null;
};

// Scans one JSON text. Either validate() the whole text as one value, or walk a
// top-level object with begin_object() and then next_member() until it returns
// false; in both cases the whole text, trailing whitespace included, is checked
// before success is reported. After a failure, error() and error_offset() say
// what and where (a byte offset, which is safe to show to the sender).
//
//     JsonScanner scanner(text, 32);
//     JsonMember member;
//     if (scanner.begin_object())
//         while (scanner.next_member(member)) { /* use member */ }
//     if (scanner.error() != ScanError::none) { /* reject */ }
class JsonScanner {
public:
    // `max_depth` counts the outermost container as 1; 0 rejects any container.
    JsonScanner(std::string_view text, std::size_t max_depth) noexcept : text_(text), max_depth_(max_depth) {}

    // True when the whole text is exactly one JSON value surrounded by optional whitespace.
    bool validate() {
        skip_whitespace();
        JsonKind kind = JsonKind::null;
        if (!skip_value(0, kind)) return false;
        return finish();
    }

    // Opens the top-level object (depth 1). False if the text does not start
    // with one (after whitespace) or if `max_depth` is 0.
    bool begin_object() {
        skip_whitespace();
        if (at_end()) return fail(ScanError::unexpected_end);
        if (text_[pos_] != '{') return fail(ScanError::not_an_object);
        if (max_depth_ < 1) return fail(ScanError::too_deep);
        ++pos_;
        walk_ = Walk::first_member;
        return true;
    }

    // Reads the next member of the object opened by begin_object(). False at the
    // end of the object (then error() is none and the rest of the text was
    // checked to be whitespace) or on an error.
    bool next_member(JsonMember& member) {
        if (walk_ != Walk::first_member && walk_ != Walk::next_member) return false;
        skip_whitespace();
        if (at_end()) return fail(ScanError::unexpected_end);
        if (walk_ == Walk::first_member) {
            if (text_[pos_] == '}') return close_object();
        } else {
            if (text_[pos_] == '}') return close_object();
            if (text_[pos_] != ',') return fail(ScanError::unexpected_character);
            ++pos_;
            skip_whitespace();
            if (at_end()) return fail(ScanError::unexpected_end);
        }
        if (text_[pos_] != '"') return fail(ScanError::unexpected_character);

        const std::size_t key_start = pos_;
        if (!scan_string()) return false;
        auto key = decode_json_string(text_.substr(key_start, pos_ - key_start));
        if (!key) {
            pos_ = key_start;
            return fail(ScanError::unpaired_surrogate);
        }
        skip_whitespace();
        if (at_end()) return fail(ScanError::unexpected_end);
        if (text_[pos_] != ':') return fail(ScanError::unexpected_character);
        ++pos_;
        skip_whitespace();

        const std::size_t value_start = pos_;
        JsonKind kind = JsonKind::null;
        if (!skip_value(1, kind)) return false;
        member.key = std::move(*key);
        member.value = text_.substr(value_start, pos_ - value_start);
        member.kind = kind;
        walk_ = Walk::next_member;
        return true;
    }

    ScanError error() const noexcept { return error_; }
    std::size_t error_offset() const noexcept { return error_offset_; }

private:
    enum class Walk : std::uint8_t { not_started, first_member, next_member, done };

    bool at_end() const noexcept { return pos_ >= text_.size(); }

    void skip_whitespace() noexcept {
        while (pos_ < text_.size() && json_detail::is_whitespace(text_[pos_])) ++pos_;
    }

    bool fail(ScanError error) noexcept {
        if (error_ == ScanError::none) {
            error_ = error;
            error_offset_ = pos_;
        }
        walk_ = Walk::done;
        return false;
    }

    // Closes the top-level object and checks that only whitespace follows.
    bool close_object() {
        ++pos_;
        walk_ = Walk::done;
        finish();
        return false;
    }

    bool finish() {
        skip_whitespace();
        if (!at_end()) return fail(ScanError::trailing_characters);
        return true;
    }

    // Skips one complete value starting at pos_ (no leading whitespace), which
    // sits inside `outer_depth` already open containers. Iterative: the only
    // state is the bit stack of open containers and what the grammar expects next.
    bool skip_value(std::size_t outer_depth, JsonKind& kind) {
        enum class Expect : std::uint8_t { value, key, after_value };
        json_detail::ContainerStack open;
        Expect expect = Expect::value;
        bool first = true;

        for (;;) {
            if (expect == Expect::after_value && open.empty()) return true;
            skip_whitespace();
            if (at_end()) return fail(ScanError::unexpected_end);
            const char c = text_[pos_];

            if (expect == Expect::key) {
                if (c != '"') return fail(ScanError::unexpected_character);
                if (!scan_string()) return false;
                skip_whitespace();
                if (at_end()) return fail(ScanError::unexpected_end);
                if (text_[pos_] != ':') return fail(ScanError::unexpected_character);
                ++pos_;
                expect = Expect::value;
                continue;
            }

            if (expect == Expect::after_value) {
                if (c == ',') {
                    ++pos_;
                    expect = open.top_is_object() ? Expect::key : Expect::value;
                } else if (c == (open.top_is_object() ? '}' : ']')) {
                    ++pos_;
                    open.pop();
                } else {
                    return fail(ScanError::unexpected_character);
                }
                continue;
            }

            // Expect::value
            JsonKind this_kind = JsonKind::null;
            if (c == '{' || c == '[') {
                // Checked before pushing, so the limit holds however long the input is.
                if (outer_depth + open.size() + 1 > max_depth_) return fail(ScanError::too_deep);
                const bool is_object = c == '{';
                this_kind = is_object ? JsonKind::object : JsonKind::array;
                open.push(is_object);
                ++pos_;
                skip_whitespace();
                if (!at_end() && text_[pos_] == (is_object ? '}' : ']')) {
                    ++pos_;
                    open.pop();
                    expect = Expect::after_value;
                } else {
                    expect = is_object ? Expect::key : Expect::value;
                }
            } else {
                bool ok = false;
                if (c == '"') {
                    this_kind = JsonKind::string;
                    ok = scan_string();
                } else if (c == '-' || json_detail::is_digit(c)) {
                    this_kind = JsonKind::number;
                    ok = scan_number();
                } else if (c == 't') {
                    this_kind = JsonKind::boolean;
                    ok = scan_literal("true");
                } else if (c == 'f') {
                    this_kind = JsonKind::boolean;
                    ok = scan_literal("false");
                } else if (c == 'n') {
                    this_kind = JsonKind::null;
                    ok = scan_literal("null");
                } else {
                    return fail(ScanError::unexpected_character);
                }
                if (!ok) return false;
                expect = Expect::after_value;
            }
            if (first) {
                kind = this_kind;
                first = false;
            }
        }
    }

    // A string token starting at the opening quote at pos_; leaves pos_ after the closing quote.
    bool scan_string() {
        const auto* const bytes = reinterpret_cast<const unsigned char*>(text_.data());
        const auto* const end = bytes + text_.size();
        ++pos_;
        for (;;) {
            if (at_end()) return fail(ScanError::unexpected_end);
            const unsigned char c = bytes[pos_];
            if (c == '"') {
                ++pos_;
                return true;
            }
            if (c < 0x20) return fail(ScanError::control_character);
            if (c == '\\') {
                ++pos_;
                if (at_end()) return fail(ScanError::unexpected_end);
                switch (text_[pos_]) {
                    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                        ++pos_;
                        break;
                    case 'u': {
                        ++pos_;
                        for (int i = 0; i < 4; ++i, ++pos_) {
                            if (at_end()) return fail(ScanError::unexpected_end);
                            if (json_detail::hex_value(text_[pos_]) < 0) return fail(ScanError::invalid_escape);
                        }
                        break;
                    }
                    default: return fail(ScanError::invalid_escape);
                }
                continue;
            }
            if (c < 0x80) {
                ++pos_;
                continue;
            }
            const std::size_t length = utf8_sequence_length(bytes + pos_, end);
            if (length == 0) return fail(ScanError::invalid_utf8);
            pos_ += length;
        }
    }

    // Grammar only: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, never converted.
    bool scan_number() noexcept {
        auto digit_here = [this] { return !at_end() && json_detail::is_digit(text_[pos_]); };
        auto skip_digits = [this] {
            while (!at_end() && json_detail::is_digit(text_[pos_])) ++pos_;
        };

        if (text_[pos_] == '-') ++pos_;
        if (!digit_here()) return fail(ScanError::invalid_number);
        if (text_[pos_] == '0') {
            ++pos_;
        } else {
            skip_digits();
        }
        if (!at_end() && text_[pos_] == '.') {
            ++pos_;
            if (!digit_here()) return fail(ScanError::invalid_number);
            skip_digits();
        }
        if (!at_end() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
            ++pos_;
            if (!at_end() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
            if (!digit_here()) return fail(ScanError::invalid_number);
            skip_digits();
        }
        // The grammar would reject these one step later as "unexpected character";
        // naming the number ("01", "1.2.3", "1e5e") gives a clearer message.
        if (!at_end()) {
            const char next = text_[pos_];
            if (json_detail::is_digit(next) || next == '.' || next == 'e' || next == 'E' || next == '+' ||
                next == '-') {
                return fail(ScanError::invalid_number);
            }
        }
        return true;
    }

    bool scan_literal(std::string_view word) noexcept {
        if (text_.substr(pos_, word.size()) != word) return fail(ScanError::invalid_literal);
        pos_ += word.size();
        return true;
    }

    std::string_view text_;
    std::size_t max_depth_;
    std::size_t pos_ = 0;
    ScanError error_ = ScanError::none;
    std::size_t error_offset_ = 0;
    Walk walk_ = Walk::not_started;
};

}  // namespace wshub::detail
