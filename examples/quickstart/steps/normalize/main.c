/*
 * normalize: the second step of the quickstart, in C on the C step SDK (protocol/c).
 *
 * Reads the `examples` input (tf.train.Example TFRecords with an int64 `id` and a float
 * `value`), min-max normalizes `value` to [0, 1], multiplies it by `scale`, and writes the
 * examples in the same order. Two passes over the input: one for the range, one to write.
 * Built once per bundle version and machine by the manifest's `build:` command.
 */

#include <float.h>
#include <stdio.h>

#include "zenml_step.h"

/* Calls `visit` with each example's value; fails the step on a bad record or a missing value. */
static void each_value(const char *input, zs_example *example, void (*visit)(zs_example *, float, void *), void *context) {
    zs_error error;
    zs_reader *reader = zs_reader_open(input, ZS_COMPRESSION_AUTO, &error);
    if (reader == NULL) zs_fail("%s", error.message);
    zs_status status;
    while ((status = zs_reader_next_example(reader, example, &error)) == ZS_OK) {
        const zs_feature *value = zs_example_get(example, "value");
        if (value == NULL || value->kind != ZS_FEATURE_FLOAT || value->count != 1) {
            zs_fail("record %lld of %s has no single float 'value'; normalize reads generate's examples",
                    (long long)zs_reader_record_index(reader) - 1, zs_reader_path(reader));
        }
        visit(example, value->floats[0], context);
    }
    if (status < 0) zs_fail("%s", error.message);
    zs_reader_close(reader);
}

typedef struct { float min, max; long long count; } range;

static void measure(zs_example *example, float value, void *context) {
    (void)example;
    range *r = context;
    if (value < r->min) r->min = value;
    if (value > r->max) r->max = value;
    r->count++;
}

typedef struct { range range; double scale; zs_sharded_writer *writer; } rescaling;

static void rescale(zs_example *example, float value, void *context) {
    rescaling *job = context;
    const range *r = &job->range;
    /* One distinct value (or one row) has no spread: it maps to 0. */
    float normalized = r->max > r->min ? (float)((value - r->min) / (double)(r->max - r->min) * job->scale) : 0.0f;
    zs_error error;
    if (zs_example_set_floats(example, "value", &normalized, 1) != ZS_OK) zs_fail("out of memory");
    if (zs_sharded_writer_write_example(job->writer, example, &error) != ZS_OK) zs_fail("%s", error.message);
}

int main(void) {
    json_t *request = zs_read_request();
    const char *input = zs_input_path(request, "examples", 0);
    const char *output = zs_output_path(request, "examples");
    double scale = zs_config_number(request, "scale", 1.0);
    if (input == NULL || output == NULL) zs_fail("the request lacks the 'examples' input or output");

    zs_example *example = zs_example_new();
    rescaling job = {.range = {FLT_MAX, -FLT_MAX, 0}, .scale = scale};
    each_value(input, example, measure, &job.range);
    if (job.range.count == 0) zs_fail("the input has no examples: %s", input);

    zs_error error;
    job.writer = zs_sharded_writer_open(output, "data", 1, ZS_COMPRESSION_NONE, &error);
    if (job.writer == NULL) zs_fail("%s", error.message);
    each_value(input, example, rescale, &job);
    if (zs_sharded_writer_close(job.writer, &error) != ZS_OK) zs_fail("%s", error.message);
    zs_example_free(example);
    zs_log("normalized %lld values from [%g, %g] to [0, %g]", job.range.count, job.range.min, job.range.max, scale);

    zs_response *response = zs_response_new();
    zs_response_property_integer(response, "examples", "records", job.range.count);
    int written = zs_response_write(response);
    json_decref(request);
    return written == 0 ? 0 : 1;
}
