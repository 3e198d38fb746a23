import Foundation

// The files that the standard steps in `steps/` write, as documented in `steps/README.md`. A step
// in any language that writes these files (with their `format` key) gets the same views.

/// `statistics.json` (`zenml.statistics/1`) of an `ExampleStatistics` artifact: per dataset (split)
/// and feature, counts and distributions.
public struct StatisticsView: Codable, Sendable, Hashable {
    public static let format = "zenml.statistics/1"

    public struct Dataset: Codable, Sendable, Hashable {
        public var name: String
        public var numExamples: Int
        public var features: [Feature]
    }

    public struct Feature: Codable, Sendable, Hashable {
        public var name: String
        public var type: String
        public var count: Int
        public var missing: Int
        public var numeric: Numeric?
        public var string: Strings?
    }

    public struct Numeric: Codable, Sendable, Hashable {
        public var min: Double?
        public var max: Double?
        public var mean: Double?
        public var stdDev: Double?
        public var median: Double?
        public var numZeros: Int?
        public var histogram: [Bucket]?
    }

    public struct Bucket: Codable, Sendable, Hashable {
        public var low: Double
        public var high: Double
        public var count: Double
    }

    public struct Strings: Codable, Sendable, Hashable {
        public var unique: Int?
        public var avgLength: Double?
        public var topValues: [ValueCount]?
    }

    public struct ValueCount: Codable, Sendable, Hashable {
        public var value: String
        public var count: Double
    }

    public var datasets: [Dataset]
}

/// `schema.json` (`zenml.schema/1`) of a `Schema` artifact: what each feature should look like.
public struct SchemaView: Codable, Sendable, Hashable {
    public static let format = "zenml.schema/1"

    public struct Feature: Codable, Sendable, Hashable {
        public var name: String
        public var type: String
        public var presence: Presence?
        public var valueCount: ValueCount?
        public var domain: Domain?
    }

    public struct Presence: Codable, Sendable, Hashable {
        public var minFraction: Double?
        public var minCount: Int?
    }

    public struct ValueCount: Codable, Sendable, Hashable {
        public var min: Int?
        public var max: Int?
    }

    /// Either the allowed values of a categorical feature or the range of a numeric one.
    public struct Domain: Codable, Sendable, Hashable {
        public var values: [String]?
        public var min: Double?
        public var max: Double?
    }

    public var features: [Feature]
}

/// `anomalies.json` (`zenml.anomalies/1`) of an `ExampleAnomalies` artifact.
public struct AnomaliesView: Codable, Sendable, Hashable {
    public static let format = "zenml.anomalies/1"

    public struct Anomaly: Codable, Sendable, Hashable {
        public var feature: String
        public var kind: String
        public var severity: String
        public var description: String
    }

    public struct Drift: Codable, Sendable, Hashable {
        public var feature: String
        public var distance: Double
        public var threshold: Double?
    }

    public var anomalies: [Anomaly]
    public var drift: [Drift]?
}

/// `evaluation.json` (`zenml.evaluation/1`) of a `ModelEvaluation` artifact.
public struct EvaluationView: Codable, Sendable, Hashable {
    public static let format = "zenml.evaluation/1"

    public struct ClassMetrics: Codable, Sendable, Hashable {
        public var className: String
        public var precision: Double?
        public var recall: Double?
        public var support: Int?

        enum CodingKeys: String, CodingKey {
            case className = "class", precision, recall, support
        }
    }

    /// Rows are the actual classes, columns the predicted ones, both in `labels` order.
    public struct ConfusionMatrix: Codable, Sendable, Hashable {
        public var labels: [String]
        public var rows: [[Int]]
    }

    public struct Baseline: Codable, Sendable, Hashable {
        public var accuracy: Double?
    }

    public var label: String?
    public var examples: Int?
    public var accuracy: Double
    public var classes: [String]?
    public var perClass: [ClassMetrics]?
    public var confusionMatrix: ConfusionMatrix?
    public var baseline: Baseline?
    public var threshold: Double?
    public var blessed: Bool?
}
