import XCTest
import ZenMLContract
@testable import ZenMLEngine

/// How a step's `resources:` and timeout become sbatch options (what Slurm makes of them is
/// checked against the real Slurm in `SlurmTests`).
final class SlurmResourceOptionsTests: XCTestCase {
    func testEveryResourceMapsToItsSbatchOption() {
        let resources = BundleManifest.Resources(cpus: 4, memory: "8G", time: "2:00:00", gpus: 2, partition: "gpu")
        XCTAssertEqual(
            SlurmBackend.resourceOptions(resources, timeout: 30, defaultPartition: "cpu"),
            ["--cpus-per-task=4", "--mem=8G", "--gres=gpu:2", "--partition=gpu", "--time=2:00:00"],
            "the step's own time and partition win over the timeout and the default partition")
    }

    func testNothingAskedGivesNoOptions() {
        XCTAssertEqual(SlurmBackend.resourceOptions(nil, timeout: nil), [])
        XCTAssertEqual(SlurmBackend.resourceOptions(BundleManifest.Resources(gpus: 0), timeout: nil), [], "no GPU asked for, no --gres")
    }

    func testTheDefaultPartitionAppliesWhenTheStepNamesNone() {
        XCTAssertEqual(SlurmBackend.resourceOptions(BundleManifest.Resources(cpus: 1), timeout: nil, defaultPartition: "debug"),
                       ["--cpus-per-task=1", "--partition=debug"])
    }

    func testWithoutATimeTheTimeoutPlusAMinuteInWholeMinutesBoundsTheJob() {
        XCTAssertEqual(SlurmBackend.resourceOptions(nil, timeout: 600), ["--time=11"], "10 minutes and one for the worker")
        XCTAssertEqual(SlurmBackend.resourceOptions(nil, timeout: 30), ["--time=2"], "1.5 minutes, rounded up")
        XCTAssertEqual(SlurmBackend.resourceOptions(nil, timeout: 0.5), ["--time=2"])
        XCTAssertEqual(SlurmBackend.resourceOptions(BundleManifest.Resources(memory: "512M"), timeout: 3600), ["--mem=512M", "--time=61"])
    }
}

/// What a progress line says about a job, from squeue's state, node and reason.
final class SlurmStatusDetailTests: XCTestCase {
    func testAPendingJobShowsSlurmsReasonAndARunningOneItsNode() {
        let job = "slurm job 12"
        XCTAssertEqual(SlurmBackend.statusDetail(job: job, state: "PENDING", node: "", reason: "Resources"), "slurm job 12, reason Resources")
        XCTAssertEqual(SlurmBackend.statusDetail(job: job, state: "PENDING", node: "", reason: "None"), "slurm job 12", "no reason yet")
        XCTAssertEqual(SlurmBackend.statusDetail(job: job, state: "CONFIGURING", node: "n3", reason: "None"), "slurm job 12, configuring")
        XCTAssertEqual(SlurmBackend.statusDetail(job: job, state: "RUNNING", node: "n3", reason: "None"), "slurm job 12 on n3")
        XCTAssertEqual(SlurmBackend.statusDetail(job: job, state: "COMPLETING", node: "n3", reason: "None"), "slurm job 12 on n3, completing")
    }
}

/// A step's job directory, `jobs/KEY/RUN-STEP/`, held with a lock while the host needs it.
final class HeldJobDirectoryTests: XCTestCase {
    /// Another step of the same key looking at the key's jobs can take a directory in the instant
    /// between its making and its locking, find it abandoned and remove it: the step making it
    /// waits for that and makes it again, instead of failing with "cannot make and lock the job
    /// directory" (seen once in `SlurmTests.testStepsWithTheSameCacheKeyRunAsTheirOwnJobs`).
    func testMakingAJobDirectoryThatAnotherStepIsLookingAtWaitsForIt() throws {
        let key = NSTemporaryDirectory() + "zenml-jobs-\(UUID().uuidString)/KEY"
        defer { try? FileManager.default.removeItem(atPath: (key as NSString).deletingLastPathComponent) }
        let path = key + "/run-three"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path + "/host.lock", contents: nil)
        let scanner = try XCTUnwrap(HeldJobDirectory.take(path, create: false), "the other step's look takes it")
        let released = expectation(description: "the other step removed it")
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) {
            scanner.remove()
            released.fulfill()
        }
        let own = try XCTUnwrap(HeldJobDirectory.take(path, create: true), "the step gave up on its own directory")
        wait(for: [released], timeout: 5)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/host.lock"), "made again after the removal")
        XCTAssertNil(HeldJobDirectory.take(path, create: false), "and held")
        own.remove()
    }
}
