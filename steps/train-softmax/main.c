/*
 * train-softmax: multinomial logistic (softmax) regression (C11, on the C SDK).
 *
 * Inputs are built from the train split's statistics: numeric features standardized with their
 * mean and standard deviation (a missing value becomes the mean, so 0), string features one-hot
 * over their top values (missing or unknown: all zeros). Training is mini-batch gradient descent
 * on the cross-entropy with L2, in an order shuffled by a splitmix64 generator seeded with the
 * request's seed, so the same request gives the same model.
 */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zenml_step.h"

typedef struct {
    const char *name;
    int categorical;
    double mean, std;
    size_t vocabulary_size;
    const char **vocabulary;
    size_t offset; /* first input column */
} input_feature;

typedef struct {
    char **names;
    size_t count, capacity;
} string_list;

static size_t string_list_index(string_list *list, const char *name, int add) {
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->names[i], name) == 0) return i;
    if (!add) return (size_t)-1;
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? list->capacity * 2 : 8;
        list->names = realloc(list->names, list->capacity * sizeof *list->names);
        if (list->names == NULL) zs_fail("out of memory");
    }
    list->names[list->count] = strdup(name);
    return list->count++;
}

static uint64_t rng_state;
static uint64_t next_random(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The dataset named `split` of statistics.json (or "all" for unsplit data). */
static json_t *find_dataset(json_t *statistics, const char *split) {
    json_t *datasets = json_object_get(statistics, "datasets"), *entry, *all = NULL;
    size_t index;
    json_array_foreach(datasets, index, entry) {
        const char *name = json_string_value(json_object_get(entry, "name"));
        if (name && strcmp(name, split) == 0) return entry;
        if (name && strcmp(name, "all") == 0) all = entry;
    }
    if (all) return all;
    zs_fail("the statistics have no dataset '%s'; wire the statistics of the split Examples", split);
}

/* The value of a feature as text (for labels): the first value, or NULL when missing. */
static const char *feature_text(const zs_feature *feature, char *buffer, size_t size) {
    if (feature == NULL || feature->count == 0) return NULL;
    switch (feature->kind) {
    case ZS_FEATURE_BYTES: {
        size_t length = feature->bytes[0].length < size - 1 ? feature->bytes[0].length : size - 1;
        memcpy(buffer, feature->bytes[0].data, length);
        buffer[length] = '\0';
        return buffer;
    }
    case ZS_FEATURE_INT64: snprintf(buffer, size, "%" PRId64, feature->int64s[0]); return buffer;
    case ZS_FEATURE_FLOAT: snprintf(buffer, size, "%.9g", (double)feature->floats[0]); return buffer;
    default: return NULL;
    }
}

static void encode(const zs_example *example, const input_feature *features, size_t count, float *row, size_t width) {
    memset(row, 0, width * sizeof *row);
    char text[1024];
    for (size_t f = 0; f < count; f++) {
        const zs_feature *feature = zs_example_get(example, features[f].name);
        if (!features[f].categorical) {
            double value;
            if (feature == NULL || feature->count == 0) continue; /* the mean: 0 once standardized */
            if (feature->kind == ZS_FEATURE_FLOAT) value = feature->floats[0];
            else if (feature->kind == ZS_FEATURE_INT64) value = (double)feature->int64s[0];
            else continue;
            row[features[f].offset] = (float)((value - features[f].mean) / features[f].std);
        } else {
            const char *value = feature_text(feature, text, sizeof text);
            if (value == NULL) continue;
            for (size_t v = 0; v < features[f].vocabulary_size; v++)
                if (strcmp(features[f].vocabulary[v], value) == 0) {
                    row[features[f].offset + v] = 1.0f;
                    break;
                }
        }
    }
}

static void scores(const double *weights, const double *bias, size_t classes, const float *row, size_t width,
                   double *out) {
    double top = -INFINITY;
    for (size_t k = 0; k < classes; k++) {
        double sum = bias[k];
        for (size_t j = 0; j < width; j++) sum += weights[k * width + j] * row[j];
        out[k] = sum;
        if (sum > top) top = sum;
    }
    double total = 0;
    for (size_t k = 0; k < classes; k++) total += (out[k] = exp(out[k] - top));
    for (size_t k = 0; k < classes; k++) out[k] /= total;
}

/* Mini-batch gradient descent, one row at a time: gradients add up until `batch` rows are in,
 * then the weights move (the batch's rows all see the same weights). */
typedef struct {
    double *weights, *bias, *grad_w, *grad_b, *probabilities;
    size_t classes, width, batch;
    double rate, l2;
    size_t pending; /* rows in the current batch */
    double loss;    /* the epoch's summed cross-entropy */
} trainer;

static void finish_batch(trainer *t) {
    if (t->pending == 0) return;
    double scale = t->rate / (double)t->pending;
    for (size_t k = 0; k < t->classes; k++) {
        t->bias[k] -= scale * t->grad_b[k];
        for (size_t j = 0; j < t->width; j++)
            t->weights[k * t->width + j] -= scale * t->grad_w[k * t->width + j] + t->rate * t->l2 * t->weights[k * t->width + j];
    }
    memset(t->grad_w, 0, t->classes * t->width * sizeof *t->grad_w);
    memset(t->grad_b, 0, t->classes * sizeof *t->grad_b);
    t->pending = 0;
}

static void learn(trainer *t, const float *row, size_t target) {
    scores(t->weights, t->bias, t->classes, row, t->width, t->probabilities);
    t->loss -= log(t->probabilities[target] > 1e-300 ? t->probabilities[target] : 1e-300);
    for (size_t k = 0; k < t->classes; k++) {
        double delta = t->probabilities[k] - (k == target ? 1.0 : 0.0);
        t->grad_b[k] += delta;
        for (size_t j = 0; j < t->width; j++) t->grad_w[k * t->width + j] += delta * row[j];
    }
    if (++t->pending == t->batch) finish_batch(t);
}

/* The scratch file of encoded rows, read back in order. */
typedef struct {
    FILE *file;
    const char *path;
    unsigned char *record;
    size_t record_size, width;
    const size_t *remap; /* first-seen class index -> sorted class index */
} rows_reader;

static void rewind_rows(rows_reader *source) {
    if (fseek(source->file, 0, SEEK_SET) != 0) zs_fail("cannot read %s: %s", source->path, strerror(errno));
}

static size_t read_row(rows_reader *source, float *row) {
    if (fread(source->record, source->record_size, 1, source->file) != 1)
        zs_fail("cannot read %s back (%s); is the scratch folder's disk full?", source->path,
                ferror(source->file) ? strerror(errno) : "it is shorter than written");
    uint32_t target;
    memcpy(&target, source->record, sizeof target);
    memcpy(row, source->record + sizeof target, source->width * sizeof *row);
    return source->remap[target];
}

int main(void) {
    json_t *request = zs_read_request();
    const char *label = zs_config_string(request, "label", NULL);
    if (label == NULL || !*label) zs_fail("config 'label' names the feature to predict; set it");
    const char *split = zs_config_string(request, "split", "train");
    int epochs = (int)zs_config_integer(request, "epochs", 50);
    double rate = zs_config_number(request, "learning_rate", 0.1);
    double l2 = zs_config_number(request, "l2", 0.0001);
    size_t batch = (size_t)zs_config_integer(request, "batch_size", 32);
    size_t max_vocabulary = (size_t)zs_config_integer(request, "max_vocabulary", 50);
    size_t shuffle_buffer = (size_t)zs_config_integer(request, "shuffle_buffer", 50000);
    if (shuffle_buffer < 1) shuffle_buffer = 1;
    rng_state = zs_seed(request);

    json_error_t json_error;
    char path[4096];
    snprintf(path, sizeof path, "%s/statistics.json", zs_input_path(request, "statistics", 0));
    json_t *statistics = json_load_file(path, 0, &json_error);
    if (statistics == NULL) zs_fail("cannot read %s: %s", path, json_error.text);
    json_t *train_stats = find_dataset(statistics, split);

    /* The model's inputs: the configured features, or every feature but the label. */
    json_t *wanted = zs_config(request, "features");
    json_t *stats_features = json_object_get(train_stats, "features"), *entry;
    size_t index, feature_count = 0, width = 0;
    input_feature *features = calloc(json_array_size(stats_features) + 1, sizeof *features);
    if (features == NULL) zs_fail("out of memory");
    json_array_foreach(stats_features, index, entry) {
        const char *name = json_string_value(json_object_get(entry, "name"));
        if (name == NULL || strcmp(name, label) == 0) continue;
        if (json_array_size(wanted) > 0) {
            int listed = 0;
            size_t w;
            json_t *item;
            json_array_foreach(wanted, w, item) listed |= json_string_value(item) && strcmp(json_string_value(item), name) == 0;
            if (!listed) continue;
        }
        if (json_integer_value(json_object_get(entry, "count")) == 0) {
            zs_log("skipping %s: no value in the %s split", name, split);
            continue;
        }
        input_feature *feature = &features[feature_count];
        feature->name = name;
        feature->offset = width;
        const char *type = json_string_value(json_object_get(entry, "type"));
        if (type && strcmp(type, "STRING") == 0) {
            json_t *top = json_object_get(json_object_get(entry, "string"), "top_values");
            size_t n = json_array_size(top) < max_vocabulary ? json_array_size(top) : max_vocabulary;
            feature->categorical = 1;
            feature->vocabulary = calloc(n + 1, sizeof *feature->vocabulary);
            for (size_t v = 0; v < n; v++)
                feature->vocabulary[v] = json_string_value(json_object_get(json_array_get(top, v), "value"));
            qsort(feature->vocabulary, n, sizeof *feature->vocabulary, compare_strings);
            feature->vocabulary_size = n;
            width += n;
        } else {
            json_t *numeric = json_object_get(entry, "numeric");
            feature->mean = json_number_value(json_object_get(numeric, "mean"));
            feature->std = json_number_value(json_object_get(numeric, "std_dev"));
            if (!(feature->std > 0)) feature->std = 1;
            width += 1;
        }
        feature_count++;
    }
    if (json_array_size(wanted) > 0 && feature_count != json_array_size(wanted))
        zs_fail("config 'features' lists %zu features but only %zu are in the %s statistics with values (and are not the label)",
                json_array_size(wanted), feature_count, split);
    if (width == 0) zs_fail("no input features: the %s statistics have no feature besides the label '%s'", split, label);

    /* Pass over the training split, once: each labeled example is encoded and appended to a
     * scratch file of fixed-size records (the class in first-seen order, then `width` float32
     * inputs). Every epoch then reads that file instead of decoding the Examples again, so memory
     * does not depend on the number of rows. */
    char split_path[4096];
    const char *stats_name = json_string_value(json_object_get(train_stats, "name"));
    if (stats_name && strcmp(stats_name, "all") == 0) /* unsplit data: the shards are at the top */
        snprintf(split_path, sizeof split_path, "%s", zs_input_path(request, "examples", 0));
    else
        snprintf(split_path, sizeof split_path, "%s/%s", zs_input_path(request, "examples", 0), split);
    zs_error error;
    zs_reader *reader = zs_reader_open(split_path, ZS_COMPRESSION_AUTO, &error);
    if (reader == NULL) zs_fail("the Examples artifact has no readable '%s' split: %s", split, error.message);
    const char *scratch = json_string_value(json_object_get(request, "scratch"));
    char rows_path[4096];
    snprintf(rows_path, sizeof rows_path, "%s/train-rows.bin", scratch ? scratch : ".");
    FILE *rows_file = fopen(rows_path, "w+b");
    if (rows_file == NULL) zs_fail("cannot create %s (the step's scratch folder): %s", rows_path, strerror(errno));
    zs_example *example = zs_example_new();
    string_list classes = {0};
    size_t rows = 0, unlabeled = 0, record_size = sizeof(uint32_t) + width * sizeof(float);
    unsigned char *record = malloc(record_size);
    if (record == NULL) zs_fail("out of memory");
    char text[1024];
    zs_status status;
    while ((status = zs_reader_next_example(reader, example, &error)) == ZS_OK) {
        const char *value = feature_text(zs_example_get(example, label), text, sizeof text);
        if (value == NULL) {
            unlabeled++;
            continue;
        }
        uint32_t target = (uint32_t)string_list_index(&classes, value, 1);
        memcpy(record, &target, sizeof target);
        encode(example, features, feature_count, (float *)(record + sizeof target), width);
        if (fwrite(record, record_size, 1, rows_file) != 1) zs_fail("cannot write %s: %s", rows_path, strerror(errno));
        rows++;
    }
    if (status != ZS_END) zs_fail("%s", error.message);
    zs_reader_close(reader);
    if (fflush(rows_file) != 0) zs_fail("cannot write %s: %s", rows_path, strerror(errno));
    if (unlabeled) zs_log("skipped %zu examples without a value for the label '%s'", unlabeled, label);
    if (rows == 0) zs_fail("the %s split has no example with a label '%s'", split, label);

    /* Classes in sorted order, so the model does not depend on which class came first. */
    size_t class_count = classes.count;
    char **sorted = malloc(class_count * sizeof *sorted);
    memcpy(sorted, classes.names, class_count * sizeof *sorted);
    qsort(sorted, class_count, sizeof *sorted, compare_strings);
    size_t *remap = malloc(class_count * sizeof *remap);
    for (size_t k = 0; k < class_count; k++)
        for (size_t s = 0; s < class_count; s++)
            if (sorted[s] == classes.names[k]) remap[k] = s;
    if (class_count < 2) zs_log("warning: the label has a single class ('%s'); the model always predicts it", sorted[0]);

    /* The rows in memory: all of them when they fit in the shuffle buffer (then each epoch is a
     * full Fisher-Yates shuffle, as before streaming), else a window of `shuffle_buffer` rows. */
    int in_memory = rows <= shuffle_buffer;
    size_t slots = in_memory ? rows : shuffle_buffer;
    float *matrix = malloc(slots * width * sizeof *matrix);
    size_t *targets = malloc(slots * sizeof *targets);
    double *weights = calloc(class_count * width, sizeof *weights), *bias = calloc(class_count, sizeof *bias);
    double *grad_w = calloc(class_count * width, sizeof *grad_w), *grad_b = calloc(class_count, sizeof *grad_b);
    double *probabilities = calloc(class_count, sizeof *probabilities);
    size_t *order = malloc(slots * sizeof *order);
    if (!matrix || !targets || !weights || !bias || !grad_w || !grad_b || !probabilities || !order)
        zs_fail("out of memory for %zu rows of %zu inputs (lower shuffle_buffer)", slots, width);
    for (size_t r = 0; r < slots; r++) order[r] = r;
    if (batch < 1) batch = 1;
    trainer t = {weights, bias, grad_w, grad_b, probabilities, class_count, width, batch, rate, l2, 0, 0};
    rows_reader source = {rows_file, rows_path, record, record_size, width, remap};
    if (in_memory) {
        rewind_rows(&source);
        for (size_t r = 0; r < rows; r++) targets[r] = read_row(&source, matrix + r * width);
    } else {
        zs_log("%zu train rows: streaming them from %s every epoch through a shuffle buffer of %zu rows",
               rows, rows_path, shuffle_buffer);
    }
    double loss = 0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        t.loss = 0;
        if (in_memory) {
            for (size_t r = rows - 1; r > 0; r--) { /* Fisher-Yates with the seeded generator */
                size_t j = (size_t)(next_random() % (r + 1));
                size_t swap = order[r];
                order[r] = order[j];
                order[j] = swap;
            }
            for (size_t i = 0; i < rows; i++) learn(&t, matrix + order[i] * width, targets[order[i]]);
        } else {
            /* A windowed shuffle (tf.data's shuffle buffer): fill the buffer, then each new row
             * takes the place of a random one, which is learned; at the end the rest are learned
             * in a random order. Same seed, same order. */
            rewind_rows(&source);
            size_t filled = 0;
            float *incoming = malloc(width * sizeof *incoming);
            if (incoming == NULL) zs_fail("out of memory");
            for (size_t r = 0; r < rows; r++) {
                if (filled < slots) {
                    targets[filled] = read_row(&source, matrix + filled * width);
                    filled++;
                    continue;
                }
                size_t incoming_target = read_row(&source, incoming);
                size_t j = (size_t)(next_random() % slots);
                learn(&t, matrix + j * width, targets[j]);
                memcpy(matrix + j * width, incoming, width * sizeof *incoming);
                targets[j] = incoming_target;
            }
            free(incoming);
            for (size_t i = filled; i > 0; i--) {
                size_t j = (size_t)(next_random() % i);
                learn(&t, matrix + j * width, targets[j]);
                if (j != i - 1) {
                    memcpy(matrix + j * width, matrix + (i - 1) * width, width * sizeof *matrix);
                    targets[j] = targets[i - 1];
                }
            }
        }
        finish_batch(&t); /* the epoch's last, partial batch */
        loss = t.loss / (double)rows;
    }
    size_t correct = 0;
    if (!in_memory) rewind_rows(&source);
    for (size_t r = 0; r < rows; r++) {
        const float *row = matrix;
        size_t target;
        if (in_memory) {
            row = matrix + r * width;
            target = targets[r];
        } else {
            target = read_row(&source, matrix);
        }
        scores(weights, bias, class_count, row, width, probabilities);
        size_t best = 0;
        for (size_t k = 1; k < class_count; k++)
            if (probabilities[k] > probabilities[best]) best = k;
        correct += best == target;
    }
    fclose(rows_file);
    remove(rows_path);
    double accuracy = (double)correct / (double)rows;

    /* model.json */
    json_t *model = json_object();
    json_object_set_new(model, "format", json_string("zenml.model/1"));
    json_object_set_new(model, "kind", json_string("softmax"));
    json_object_set_new(model, "label", json_string(label));
    json_t *class_names = json_array();
    for (size_t k = 0; k < class_count; k++) json_array_append_new(class_names, json_string(sorted[k]));
    json_object_set_new(model, "classes", class_names);
    json_t *model_features = json_array();
    for (size_t f = 0; f < feature_count; f++) {
        json_t *item = json_object();
        json_object_set_new(item, "name", json_string(features[f].name));
        json_object_set_new(item, "type", json_string(features[f].categorical ? "categorical" : "numeric"));
        if (features[f].categorical) {
            json_t *vocabulary = json_array();
            for (size_t v = 0; v < features[f].vocabulary_size; v++)
                json_array_append_new(vocabulary, json_string(features[f].vocabulary[v]));
            json_object_set_new(item, "vocabulary", vocabulary);
        } else {
            json_object_set_new(item, "mean", json_real(features[f].mean));
            json_object_set_new(item, "std", json_real(features[f].std));
        }
        json_array_append_new(model_features, item);
    }
    json_object_set_new(model, "features", model_features);
    json_t *weight_rows = json_array(), *bias_values = json_array();
    for (size_t k = 0; k < class_count; k++) {
        json_t *row = json_array();
        for (size_t j = 0; j < width; j++) json_array_append_new(row, json_real(weights[k * width + j]));
        json_array_append_new(weight_rows, row);
        json_array_append_new(bias_values, json_real(bias[k]));
    }
    json_object_set_new(model, "weights", weight_rows);
    json_object_set_new(model, "bias", bias_values);
    json_object_set_new(model, "train_examples", json_integer((json_int_t)rows));
    json_object_set_new(model, "train_accuracy", json_real(accuracy));
    json_object_set_new(model, "train_loss", json_real(loss));
    json_object_set_new(model, "epochs", json_integer(epochs));
    json_object_set_new(model, "learning_rate", json_real(rate));
    json_object_set_new(model, "l2", json_real(l2));
    json_object_set_new(model, "batch_size", json_integer((json_int_t)batch));
    snprintf(path, sizeof path, "%s/model.json", zs_output_path(request, "model"));
    if (json_dump_file(model, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) != 0)
        zs_fail("cannot write %s", path);

    zs_response *response = zs_response_new();
    zs_response_property_string(response, "model", "kind", "softmax");
    zs_response_property_string(response, "model", "label", label);
    zs_response_property_integer(response, "model", "classes", (int64_t)class_count);
    zs_response_property_integer(response, "model", "inputs", (int64_t)width);
    zs_response_property_number(response, "model", "train_accuracy", accuracy);
    zs_response_metric(response, "train_accuracy", accuracy);
    zs_response_metric(response, "train_loss", loss);
    zs_response_metric(response, "train_examples", (double)rows);
    char message[160];
    snprintf(message, sizeof message, "softmax on %zu examples, %zu inputs, %zu classes: train accuracy %.4f",
             rows, width, class_count, accuracy);
    zs_response_message(response, message);
    return zs_response_write(response) == 0 ? 0 : 1;
}
