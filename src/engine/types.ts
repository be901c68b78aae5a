/**
 * Shapes shared by every engine module. Tensors are plain Float32Arrays in row-major order: the engine
 * computes in float32 whatever the storage dtype, and ONNX Runtime takes these buffers without copying.
 */

/** A dense float32 tensor with its shape. */
export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

/** Tensors by their Hugging Face name (e.g. `roberta.encoder.layer.0.output.LayerNorm.weight`). */
export type TensorMap = Map<string, FloatTensor>;

/** The subset of a Hugging Face `RobertaConfig` the engine uses, in camelCase. */
export interface RobertaConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
  padTokenId: number;
  /** Only "gelu" (the erf form, as Hugging Face's RoBERTa) is supported. */
  hiddenAct: string;
}

/** `multilabel`: each row's label is a list of class names (possibly empty); sigmoid outputs, one per name. */
export type TaskType = 'classification' | 'regression' | 'multilabel';

/** SPARTAN memory geometry; paper defaults Np=16, Nc=3, K=8, tau=1.6. */
export interface MemoryGeometry {
  parents: number;
  children: number;
  topK: number;
  temperature: number;
}

export class SpartanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpartanError';
  }
}
