"""Builds the C step SDK's test program (protocol/c/tests/test_zenml_step.c) with `cc` and runs it
against the TFRecord vectors in shared/testdata/tfrecord/.

The program prints one line per C test and ends with "N passed, N failed"; this test fails unless
every C test passed. It is skipped only when the jansson headers are missing (scripts/setup
installs libjansson-dev, so in CI it runs).
"""

import os
import re
import shutil
import subprocess

import pytest

PROTOCOL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C_DIR = os.path.join(PROTOCOL_DIR, "c")
TEST_SOURCE = os.path.join(C_DIR, "tests", "test_zenml_step.c")


def dependency_flags():
    """Compiler and linker flags for jansson and zlib, from pkg-config when it is there."""
    if shutil.which("pkg-config"):
        result = subprocess.run(["pkg-config", "--cflags", "--libs", "jansson", "zlib"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True)
        if result.returncode == 0:
            return result.stdout.split()
    return ["-ljansson", "-lz"]


def jansson_headers_present(compiler):
    probe = subprocess.run([compiler, "-E", "-x", "c", "-", "-o", os.devnull] + [
        flag for flag in dependency_flags() if flag.startswith("-I")], input="#include <jansson.h>\n",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def c_test_program(tmp_path_factory):
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.fail("no C compiler (cc) on PATH: install gcc or clang", pytrace=False)
    if not jansson_headers_present(compiler):
        pytest.skip("jansson headers are missing: apt-get install -y libjansson-dev zlib1g-dev pkg-config "
                    "(scripts/setup does)")
    build = tmp_path_factory.mktemp("c-sdk")
    program = str(build / "test_zenml_step")
    command = [compiler, "-O2", "-g", "-Wall", "-Wextra", "-std=gnu11", "-o", program, TEST_SOURCE,
               os.path.join(C_DIR, "zenml_step.c")] + dependency_flags() + ["-lpthread", "-lm"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert result.returncode == 0, "the C SDK does not compile:\n%s\n%s" % (" ".join(command), result.stdout)
    assert "warning" not in result.stdout, "the C SDK compiles with warnings:\n" + result.stdout
    return program


def run_program(program, vectors_directory, tmp_path, **environment):
    env = dict(os.environ, TMPDIR=str(tmp_path), **environment)
    result = subprocess.run([program, vectors_directory], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, env=env, timeout=600)
    lines = result.stdout.strip().splitlines()
    match = re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1] if lines else "")
    assert match, "the C test program did not finish with 'N passed, N failed':\n" + result.stdout
    passed, failed = int(match.group(1)), int(match.group(2))
    failures = "\n".join(line for line in lines if not line.startswith("ok "))
    assert failed == 0 and result.returncode == 0, "%d C tests failed:\n%s" % (failed, failures)
    assert passed >= 25, result.stdout
    return lines


def test_the_c_sdk_passes_its_tests(c_test_program, tfrecord_vectors, tmp_path):
    lines = run_program(c_test_program, tfrecord_vectors.directory, tmp_path)
    assert any(line.startswith("CRC-32C: ") for line in lines)


def test_the_c_sdk_passes_its_tests_on_the_portable_crc(c_test_program, tfrecord_vectors, tmp_path):
    lines = run_program(c_test_program, tfrecord_vectors.directory, tmp_path, ZS_CRC32C_PORTABLE="1")
    assert "CRC-32C: portable (slicing-by-8); " in "\n".join(lines)


def test_the_c_test_program_explains_missing_vectors(c_test_program, tmp_path):
    result = subprocess.run([c_test_program, str(tmp_path / "nowhere")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert result.returncode != 0
    assert "shared/testdata/tfrecord" in result.stdout and "ZENML_TFRECORD_TESTDATA" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"


def test_python_and_c_write_the_same_bytes(c_test_program, tmp_path):
    """The same examples written by either SDK give byte-identical shards, compressed or not."""
    import sys
    sys.path.insert(0, os.path.join(PROTOCOL_DIR, "python"))
    import zenml_step

    source = tmp_path / "writer.c"
    source.write_text(r'''
#include "zenml_step.h"
#include <stdio.h>
int main(int argc, char **argv) {
    zs_error error;
    for (int c = 0; c < 3; c++) {
        char directory[4096];
        snprintf(directory, sizeof directory, "%s/%d", argv[1], c);
        zs_sharded_writer *writer = zs_sharded_writer_open(directory, "data", 2, (zs_compression)c, &error);
        if (writer == NULL) { fprintf(stderr, "%s\n", error.message); return 1; }
        zs_example *example = zs_example_new();
        for (int64_t i = 0; i < 500; i++) {
            float x[2] = {(float)i / 3.0f, -1.5f};
            char label[32];
            snprintf(label, sizeof label, "row %d", (int)i);
            zs_example_clear(example);
            zs_example_set_int64s(example, "id", &i, 1);
            zs_example_set_floats(example, "x", x, 2);
            zs_example_set_string(example, "label", label);
            if (zs_sharded_writer_write_example(writer, example, &error) != ZS_OK) { fprintf(stderr, "%s\n", error.message); return 1; }
        }
        zs_example_free(example);
        if (zs_sharded_writer_close(writer, &error) != ZS_OK) { fprintf(stderr, "%s\n", error.message); return 1; }
    }
    return 0;
}
''')
    program = str(tmp_path / "writer")
    build = subprocess.run([shutil.which("cc"), "-O2", "-I", C_DIR, "-o", program, str(source),
                            os.path.join(C_DIR, "zenml_step.c")] + dependency_flags() + ["-lpthread", "-lm"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert build.returncode == 0, build.stdout
    for c in range(3):
        os.makedirs(str(tmp_path / "c" / str(c)))
    result = subprocess.run([program, str(tmp_path / "c")], stderr=subprocess.PIPE, universal_newlines=True)
    assert result.returncode == 0, result.stderr
    for c, compression in enumerate([zenml_step.NONE, zenml_step.GZIP, zenml_step.ZLIB]):
        rows = [{"id": i, "x": zenml_step.Feature.float_list([i / 3.0, -1.5]), "label": "row %d" % i} for i in range(500)]
        python_dir = tmp_path / "python" / str(c)
        zenml_step.write_examples(python_dir, rows, shards=2, compression=compression)
        names = sorted(os.listdir(python_dir))
        assert names == sorted(os.listdir(tmp_path / "c" / str(c)))
        for name in names:
            with open(python_dir / name, "rb") as a, open(tmp_path / "c" / str(c) / name, "rb") as b:
                assert a.read() == b.read(), (compression, name)
