/// Money and time as x402 writes them: canonical unsigned decimal strings. No floating point is
/// ever involved; prices written for humans ("0.01") become atomic units exactly or are refused.
public enum Amount {
    /// Digits only, no sign, no leading zeros (except "0" itself), at most 78 digits (uint256).
    public static func isCanonical(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard let first = utf8.first, utf8.count <= 78 else { return false }
        if first == 0x30 { return utf8.count == 1 }
        return utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// Why a human-written price was refused.
    public enum PriceError: Error, Equatable, CustomStringConvertible {
        case notADecimal(String)
        case tooPrecise(String, decimals: Int)
        case zero
        case tooLarge

        public var description: String {
            switch self {
            case .notADecimal(let text):
                return "\"\(text)\" is not a plain decimal number like \"0.01\" (no sign, exponent or separators)"
            case .tooPrecise(let text, let decimals):
                return "\"\(text)\" has more than \(decimals) decimal places for this asset"
            case .zero: return "a price must be greater than zero"
            case .tooLarge: return "the price does not fit in uint256"
            }
        }
    }

    /// Converts a decimal price in whole tokens to atomic units, e.g. ("0.01", 6) → "10000".
    public static func atomicUnits(price: String, decimals: Int) -> Result<String, PriceError> {
        var text = Substring(price)
        if text.hasPrefix("$") { text = text.dropFirst() }
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        let fraction = parts.count > 1 ? parts[1] : ""
        let isDigits: (Substring) -> Bool = { $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        guard !whole.isEmpty, isDigits(whole), isDigits(fraction), parts.count == 1 || !fraction.isEmpty else {
            return .failure(.notADecimal(price))
        }
        var trimmedFraction = fraction
        while trimmedFraction.last == "0" { trimmedFraction.removeLast() }
        guard trimmedFraction.count <= decimals else { return .failure(.tooPrecise(price, decimals: decimals)) }
        let padded = String(trimmedFraction) + String(repeating: "0", count: decimals - trimmedFraction.count)
        var digits = Substring(String(whole) + padded)
        while digits.count > 1 && digits.first == "0" { digits.removeFirst() }
        guard digits != "0" else { return .failure(.zero) }
        guard digits.count <= 78, uint256(String(digits)) != nil else { return .failure(.tooLarge) }
        return .success(String(digits))
    }

    /// Atomic units back to a human decimal, e.g. ("10000", 6) → "0.01".
    public static func display(atomic: String, decimals: Int) -> String {
        guard decimals > 0 else { return atomic }
        let padded = String(repeating: "0", count: max(0, decimals + 1 - atomic.count)) + atomic
        let split = padded.index(padded.endIndex, offsetBy: -decimals)
        var fraction = padded[split...]
        while fraction.last == "0" { fraction.removeLast() }
        return fraction.isEmpty ? String(padded[..<split]) : "\(padded[..<split]).\(fraction)"
    }

    /// The 32-byte big-endian ABI encoding of a canonical decimal string; `nil` above 2²⁵⁶ − 1.
    public static func uint256(_ text: String) -> [UInt8]? {
        // Eight 32-bit limbs, least significant first; multiply by ten and add each digit.
        var limbs = [UInt32](repeating: 0, count: 8)
        for char in text.utf8 {
            guard char >= 0x30, char <= 0x39 else { return nil }
            var carry = UInt64(char - 0x30)
            for index in 0..<8 {
                let product = UInt64(limbs[index]) * 10 + carry
                limbs[index] = UInt32(truncatingIfNeeded: product)
                carry = product >> 32
            }
            guard carry == 0 else { return nil }
        }
        var out = [UInt8](repeating: 0, count: 32)
        for index in 0..<8 {
            let limb = limbs[7 - index]
            out[index * 4] = UInt8(truncatingIfNeeded: limb >> 24)
            out[index * 4 + 1] = UInt8(truncatingIfNeeded: limb >> 16)
            out[index * 4 + 2] = UInt8(truncatingIfNeeded: limb >> 8)
            out[index * 4 + 3] = UInt8(truncatingIfNeeded: limb)
        }
        return out
    }

    /// The 32-byte big-endian ABI encoding of `value`.
    public static func uint256(_ value: UInt64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        for index in 0..<8 { out[31 - index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
        return out
    }
}
