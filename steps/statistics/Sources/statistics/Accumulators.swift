// The streaming accumulators. Memory does not grow with the number of records: each is a handful
// of numbers or bounded by config (`exact_limit` distinct numbers, `sample_size` sampled numbers,
// `string_limit` distinct strings per feature). See README.md for what is exact and when.
import Foundation
import ZenMLStep

/// The feature types of the statistics and schema formats.
enum FeatureType: String {
    case int = "INT", float = "FLOAT", string = "STRING"

    init?(_ feature: Feature) {
        switch feature {
        case .int64List: self = .int
        case .floatList: self = .float
        case .bytesList: self = .string
        case .unset: return nil
        }
    }
}

/// The two number kinds: INT values stay exact 64-bit integers (and are written as integers, as
/// the Python step kept them), FLOAT values are float32 widened to doubles.
protocol StatisticsNumber: Hashable, Comparable {
    var double: Double { get }
    /// The value in the formats: an integer as it is, a float rounded to `digits`.
    func formatted(digits: Int) -> JSONValue
    /// `self - low` (for `self >= low`) rounded once to a double.
    func distance(from low: Self) -> Double
    /// `(low + high) / 2` as a double.
    static func midpoint(_ low: Self, _ high: Self) -> Double
}

extension Int64: StatisticsNumber {
    var double: Double { Double(self) }
    func formatted(digits: Int) -> JSONValue { .int(self) }
    // The difference of two Int64 with self >= low always fits a UInt64.
    func distance(from low: Int64) -> Double { Double(UInt64(bitPattern: self &- low)) }
    static func midpoint(_ low: Int64, _ high: Int64) -> Double {
        let (sum, overflow) = low.addingReportingOverflow(high)
        return overflow ? Double(low) / 2 + Double(high) / 2 : Double(sum) / 2
    }
}

extension Double: StatisticsNumber {
    var double: Double { self }
    func formatted(digits: Int) -> JSONValue { number(self, digits: digits) }
    func distance(from low: Double) -> Double { self - low }
    static func midpoint(_ low: Double, _ high: Double) -> Double { (low + high) / 2 }
}

/// SplitMix64 (Steele, Lea and Flood): a small seeded generator whose sequence is fixed by this
/// code, not by a library version, so the samples are the same on every machine and toolchain.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in 0..<bound (Lemire's multiply-and-reject, unbiased).
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold { product = next().multipliedFullWidth(by: range) }
        }
        return Int(product.high)
    }
}

/// Count, mean and variance (Welford), min, max, zeros; exact value counts while there are at
/// most `exactLimit` distinct values, and a uniform reservoir sample of `sampleSize` values
/// (Algorithm R, seeded) for the median and histogram beyond that.
final class NumericAccumulator<Value: StatisticsNumber> {
    private let digits: Int
    private let exactLimit: Int
    private let sampleSize: Int
    private var random: SplitMix64

    private(set) var n = 0
    private var mean = 0.0
    private var m2 = 0.0
    private var minimum: Value?
    private var maximum: Value?
    private var zeros = 0
    /// NaN and infinite values: counted as values of the feature, left out of the numbers.
    private(set) var nonFinite = 0
    private var isExact = true
    private var exact: [Value: Int] = [:]
    private var sample: [Value] = []

    /// `digits`: significant digits of written values; float32 values carry about 7, and printing
    /// more shows binary noise (13.1999998 for 13.2).
    init(exactLimit: Int, sampleSize: Int, seed: UInt64, digits: Int) {
        self.exactLimit = exactLimit
        self.sampleSize = sampleSize
        self.random = SplitMix64(seed: seed)
        self.digits = digits
    }

    func add(_ value: Value) {
        let x = value.double
        guard x.isFinite else {
            nonFinite += 1
            return
        }
        n += 1
        let delta = x - mean
        mean += delta / Double(n)
        m2 += delta * (x - mean)
        if let minimum, !(value < minimum) {} else { minimum = value }
        if let maximum, !(value > maximum) {} else { maximum = value }
        if x == 0 { zeros += 1 }
        if isExact {
            exact[value, default: 0] += 1
            if exact.count > exactLimit { startSample() }
        } else if sample.count < sampleSize {
            sample.append(value)
        } else {  // Algorithm R: the n-th value replaces a random slot with probability size / n
            let slot = random.below(n)
            if slot < sampleSize { sample[slot] = value }
        }
    }

    /// Replaces the exact counts by a uniform sample without replacement of the values so far
    /// (what a reservoir run from the start would hold), from which Algorithm R continues. While
    /// the counts are exact no sample is kept, which saves a random draw per value.
    private func startSample() {
        let size = min(sampleSize, n)
        // Floyd's algorithm: `size` distinct positions of 0..<n in O(size) memory.
        var chosen = Set<Int>(minimumCapacity: size)
        for upper in (n - size)..<n {
            let pick = random.below(upper + 1)
            chosen.insert(chosen.contains(pick) ? upper : pick)
        }
        let picks = chosen.sorted()
        // Positions count through the distinct values in ascending order (Swift's dictionary
        // order changes from process to process; any fixed order gives a uniform sample).
        sample = []
        sample.reserveCapacity(size)
        var next = picks.makeIterator()
        var pick = next.next()
        var position = 0
        for (value, count) in exact.sorted(by: { $0.key < $1.key }) {
            while let current = pick, current < position + count {
                sample.append(value)
                pick = next.next()
            }
            position += count
        }
        exact = [:]
        isExact = false
    }

    /// Sorted (value, count) pairs, their total, the weight of one count, and whether they are
    /// exact: all values, or the sample, where each sampled value stands for n / sample size.
    private func countedValues() -> (pairs: [(Value, Int)], total: Int, weight: Double, exact: Bool) {
        if isExact { return (exact.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, n, 1, true) }
        return (sample.sorted().map { ($0, 1) }, sample.count, Double(n) / Double(sample.count), false)
    }

    /// The middle value (the mean of the two middle values for an even total).
    private func median(_ pairs: [(Value, Int)], total: Int) -> JSONValue {
        let lowRank = (total - 1) / 2, highRank = total / 2
        var low: Value?, high: Value?
        var seen = 0
        for (value, count) in pairs {
            if low == nil, lowRank < seen + count { low = value }
            if highRank < seen + count {
                high = value
                break
            }
            seen += count
        }
        guard let low, let high else { return .null }
        return low == high ? low.formatted(digits: digits) : number(Value.midpoint(low, high), digits: digits)
    }

    private func histogram(_ pairs: [(Value, Int)], weight: Double, buckets: Int) -> [JSONValue] {
        guard n > 0, let low = minimum, let high = maximum else { return [] }
        if low == high {
            return [.object([("low", low.formatted(digits: digits)), ("high", high.formatted(digits: digits)), ("count", .int(Int64(n)))])]
        }
        let width = high.distance(from: low) / Double(buckets)
        var counts = [Double](repeating: 0, count: buckets)
        for (value, count) in pairs {
            let position = value.distance(from: low) / width
            let index = position >= Double(buckets - 1) ? buckets - 1 : Int(position)
            counts[index] += Double(count) * weight
        }
        return counts.enumerated().map { i, count in
            let upper = i == buckets - 1 ? high.formatted(digits: digits) : number(low.double + Double(i + 1) * width, digits: digits)
            return .object([
                ("low", number(low.double + Double(i) * width, digits: digits)), ("high", upper),
                ("count", number(roundedToThousandths(count))),
            ])
        }
    }

    /// The `numeric` member and whether it is exact.
    func summary(buckets: Int) -> (JSONValue, exact: Bool) {
        guard n > 0, let minimum, let maximum else { return (NumericAccumulator.emptySummary, true) }
        let (pairs, total, weight, exact) = countedValues()
        return (.object([
            ("min", minimum.formatted(digits: digits)), ("max", maximum.formatted(digits: digits)), ("mean", number(mean)),
            ("std_dev", number((m2 / Double(n)).squareRoot())), ("median", median(pairs, total: total)),
            ("num_zeros", .int(Int64(zeros))), ("histogram", .array(histogram(pairs, weight: weight, buckets: buckets))),
        ]), exact)
    }

    static var emptySummary: JSONValue {
        .object([
            ("min", .null), ("max", .null), ("mean", .null), ("std_dev", .null), ("median", .null),
            ("num_zeros", .int(0)), ("histogram", .array([])),
        ])
    }
}

/// Python's round(value, 3): the decimal rounding of the exact binary value, ties to even, which
/// is what glibc's printf does too.
func roundedToThousandths(_ value: Double) -> Double {
    Double(String(format: "%.3f", value)) ?? value
}

/// Value counts (at most `limit` distinct values; later new values are counted in the totals but
/// not by value), total length in UTF-8 bytes.
final class StringAccumulator {
    private let limit: Int
    private var counts: [Data: Int] = [:]
    private var values = 0
    private var length = 0
    private var overflow = false

    init(limit: Int) { self.limit = limit }

    func add(_ value: Data) {
        values += 1
        length += value.count
        if let index = counts.index(forKey: value) {
            counts.values[index] += 1
        } else if counts.count < limit {
            counts[value] = 1
        } else {
            overflow = true
        }
    }

    /// The `string` member and whether it is exact.
    func summary(topK: Int) -> (JSONValue, exact: Bool) {
        let top = counts.sorted { a, b in
            a.value != b.value ? a.value > b.value : a.key.lexicographicallyPrecedes(b.key)
        }.prefix(topK)
        return (.object([
            ("unique", .int(Int64(counts.count))),
            ("avg_length", values > 0 ? number(Double(length) / Double(values)) : .int(0)),
            ("top_values", .array(top.map { .object([("value", .string(String(decoding: $0.key, as: UTF8.self))), ("count", .int(Int64($0.value)))]) })),
        ]), !overflow)
    }

    static let emptySummary: JSONValue = .object([("unique", .int(0)), ("avg_length", .int(0)), ("top_values", .array([]))])
}

/// Everything about one feature in one split.
final class FeatureAccumulator {
    enum Values {
        case int(NumericAccumulator<Int64>)
        case float(NumericAccumulator<Double>)
        case string(StringAccumulator)
    }

    let name: String
    let type: FeatureType
    let values: Values
    private(set) var present = 0
    private var minValues: Int?
    private var maxValues = 0
    private var totalValues = 0

    init(name: String, type: FeatureType, config: Configuration) {
        self.name = name
        self.type = type
        // The feature name's first 8 UTF-8 bytes (little-endian) xor the seed: each feature has
        // its own sequence, the same in every split and run.
        var seed: UInt64 = 0
        for (index, byte) in name.utf8.prefix(8).enumerated() { seed |= UInt64(byte) << (8 * UInt64(index)) }
        seed ^= UInt64(bitPattern: config.seed)
        switch type {
        case .int: values = .int(NumericAccumulator(exactLimit: config.exactLimit, sampleSize: config.sampleSize, seed: seed, digits: 9))
        case .float: values = .float(NumericAccumulator(exactLimit: config.exactLimit, sampleSize: config.sampleSize, seed: seed, digits: 7))
        case .string: values = .string(StringAccumulator(limit: config.stringLimit))
        }
    }

    /// Adds one example's value list; false when its kind is not the feature's type.
    func add(_ feature: Feature) -> Bool {
        switch (feature, values) {
        case (.int64List(let list), .int(let accumulator)):
            count(list.count)
            for value in list { accumulator.add(value) }
        case (.floatList(let list), .float(let accumulator)):
            count(list.count)
            for value in list { accumulator.add(Double(value)) }
        case (.bytesList(let list), .string(let accumulator)):
            count(list.count)
            for value in list { accumulator.add(value) }
        case (.unset, _):
            count(0)  // a Feature with no list: present, with no value
        default:
            return false
        }
        return true
    }

    private func count(_ values: Int) {
        present += 1
        totalValues += values
        if let minValues, minValues <= values {} else { minValues = values }
        maxValues = max(maxValues, values)
    }

    var nonFinite: Int {
        switch values {
        case .int(let accumulator): return accumulator.nonFinite
        case .float(let accumulator): return accumulator.nonFinite
        case .string: return 0
        }
    }

    /// The feature's entry of a dataset and whether its numbers are exact.
    func document(records: Int, config: Configuration) -> (JSONValue, exact: Bool) {
        let member: (String, JSONValue)
        let exact: Bool
        switch values {
        case .int(let accumulator):
            let (summary, isExact) = accumulator.summary(buckets: config.histogramBuckets)
            (member, exact) = (("numeric", summary), isExact)
        case .float(let accumulator):
            let (summary, isExact) = accumulator.summary(buckets: config.histogramBuckets)
            (member, exact) = (("numeric", summary), isExact)
        case .string(let accumulator):
            let (summary, isExact) = accumulator.summary(topK: config.topK)
            (member, exact) = (("string", summary), isExact)
        }
        return (.object(Self.header(name: name, type: type, count: present, missing: records - present,
                                    lengths: (minValues ?? 0, maxValues, totalValues)) + [member]), exact)
    }

    /// A feature seen in another split but in no record of this one.
    static func empty(name: String, type: FeatureType, records: Int) -> JSONValue {
        let member = type == .string ? ("string", StringAccumulator.emptySummary) : ("numeric", NumericAccumulator<Double>.emptySummary)
        return .object(header(name: name, type: type, count: 0, missing: records, lengths: (0, 0, 0)) + [member])
    }

    private static func header(name: String, type: FeatureType, count: Int, missing: Int, lengths: (Int, Int, Int)) -> [(String, JSONValue)] {
        [("name", .string(name)), ("type", .string(type.rawValue)), ("count", .int(Int64(count))), ("missing", .int(Int64(missing))),
         ("num_values", .object([("min", .int(Int64(lengths.0))), ("max", .int(Int64(lengths.1))), ("total", .int(Int64(lengths.2)))]))]
    }
}
