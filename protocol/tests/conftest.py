"""Shared pytest fixtures for the protocol tests.

`tfrecord_vectors` gives the TensorFlow-written TFRecord test files and their description,
`vectors.json`. They live in `shared/testdata/tfrecord/`, a sibling of the repository (CI clones
the repository with `shared/` beside it): `<repo>/../shared/testdata/tfrecord`.
`ZENML_TFRECORD_TESTDATA` overrides the location.
"""

import base64
import json
import os

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tfrecord_testdata_directory():
    """Where the TFRecord test vectors should be (whether or not they are there)."""
    override = os.environ.get("ZENML_TFRECORD_TESTDATA")
    if override:
        return os.path.abspath(override)
    return os.path.join(os.path.dirname(REPOSITORY), "shared", "testdata", "tfrecord")


class TFRecordVectors:
    """The files of shared/testdata/tfrecord and what vectors.json says about them."""

    def __init__(self, directory):
        self.directory = directory
        with open(os.path.join(directory, "vectors.json"), encoding="utf-8") as handle:
            self.document = json.load(handle)
        self.files = self.document["files"]

    def path(self, name):
        return os.path.join(self.directory, name)

    def bytes(self, name):
        with open(self.path(name), "rb") as handle:
            return handle.read()

    def records(self, name):
        """The record descriptions of a file, following `same_records_as` for compressed variants."""
        described = self.files[name]
        if "records" in described:
            return described["records"]
        return self.records(described["same_records_as"])

    def record_bytes(self, name):
        """The exact bytes of every record of a file."""
        return [base64.b64decode(record["serialized_b64"] if "serialized_b64" in record else record["data_b64"])
                for record in self.records(name)]


@pytest.fixture(scope="session")
def tfrecord_vectors():
    directory = tfrecord_testdata_directory()
    if not os.path.isfile(os.path.join(directory, "vectors.json")):
        pytest.fail(
            "TFRecord test vectors not found at %s. They live in shared/testdata/tfrecord/, a sibling of "
            "the repository directory (%s); check out shared/ next to the repository or set "
            "ZENML_TFRECORD_TESTDATA to the directory holding vectors.json." % (directory, REPOSITORY),
            pytrace=False)
    return TFRecordVectors(directory)
