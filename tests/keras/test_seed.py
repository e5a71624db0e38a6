"""The seed article's own model code (section 5.2), run on minires with only its imports
changed: ``residual_block`` and ``build_resnet`` below are copied verbatim."""

import io

import numpy as np

import minires as tf
from minires.keras.losses import CategoricalCrossentropy
from minires.keras.metrics import Accuracy  # noqa: F401  (imported by the seed, never used there)
from minires.keras.layers import Input, Conv2D, MaxPooling2D, Flatten, Dense, Reshape  # noqa: F401
from minires.keras.models import Model
from minires.keras.optimizers import Adam


# 残差块定义
def residual_block(inputs, filters, block_index):
    x = Conv2D(filters, (3, 3), padding='same', activation='relu')(inputs)
    x = Conv2D(filters, (3, 3), padding='same')(x)
    x = MaxPooling2D(pool_size=(2, 2))(x)
    
    skip_connection = Conv2D(filters, (1, 1), padding='same')(inputs)
    skip_connection = MaxPooling2D(pool_size=(2, 2))(skip_connection)
    
    x = tf.keras.layers.add([x, skip_connection])
    x = tf.keras.layers.Activation('relu')(x)
    
    return x

# 模型搭建
def build_resnet(input_shape, num_classes):
    inputs = Input(shape=input_shape)
    
    x = Conv2D(64, (3, 3), activation='relu', padding='same')(inputs)
    x = MaxPooling2D(pool_size=(2, 2))(x)
    
    for i in range(3):
        x = residual_block(x, 64, i)
    
    x = Flatten()(x)
    x = Dense(128, activation='relu')(x)
    outputs = Dense(num_classes, activation='softmax')(x)
    
    model = Model(inputs=inputs, outputs=outputs)
    
    return model


def test_seed_model_has_270026_parameters_and_a_keras_summary():
    model = build_resnet(input_shape=(32, 32, 3), num_classes=10)
    assert model.count_params() == 270_026
    out = io.StringIO()
    model.summary(print_fn=lambda line: out.write(line + "\n"))
    text = out.getvalue()
    assert "Total params: 270,026" in text and "Trainable params: 270,026" in text
    assert "(None, 2, 2, 64)" in text and "(None, 10)" in text
    assert sum(" (Conv2D) " in line for line in text.splitlines()) == 10
    assert sum(" (Add) " in line for line in text.splitlines()) == 3


def test_seed_model_equals_minires_build_resnet():
    from minires.models import build_resnet as minires_build_resnet

    seed_model = build_resnet(input_shape=(32, 32, 3), num_classes=10)
    ours = minires_build_resnet()
    assert [w.shape for w in seed_model.get_weights()] == [w.shape for w in ours.get_weights()]
    assert [type(a).__name__ for a in seed_model.layers] == [type(b).__name__ for b in ours.layers]
    ours.set_weights(seed_model.get_weights())
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_array_equal(seed_model.predict(x), ours.predict(x))


def test_seed_training_code_runs():
    """The seed's train_model / detect_changes calls, on a few random images."""
    rng = np.random.default_rng(0)
    x_train = rng.random((8, 32, 32, 3), dtype=np.float32)
    y_train = tf.keras.utils.to_categorical(rng.integers(0, 10, (8, 1)), 10)
    model = build_resnet(input_shape=(32, 32, 3), num_classes=10)
    model.compile(optimizer=Adam(), loss=CategoricalCrossentropy(), metrics=['accuracy'])
    history = model.fit(x_train, y_train, batch_size=4, epochs=1, validation_data=(x_train[:4], y_train[:4]),
                        verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    predictions = model.predict(x_train[:1])
    assert predictions.shape == (1, 10) and 0 <= np.argmax(predictions) < 10
