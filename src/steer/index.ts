/**
 * The white-box stage (docs/protocols.md §5): persona vectors extracted with contrastive system prompts through
 * the local engine, layer choice by a steering sweep, monitoring (projection vs expression,
 * fine-tuning shift, data screening), the assistant axis with activation capping, and steered or
 * capped models as ChatModel subjects for the evals. See docs/steering.md.
 */
export * from './options.js';
export { SteerEngine, engineOf, hooksTag, type LayerActivations, type Rollout, type RolloutOptions } from './engine.js';
export { extractPersonaVector, keepPairs, vectorsFromActivations, conversation, type ExtractInput, type ExtractResult, type FilterCounts, type KeptPair, type ScoredRollout, type Sign } from './extract.js';
export { generateTraitPrompts, readTraitPrompts, splitQuestions, teacherPrompt, traitPromptsSchema, type ContrastivePair, type TraitPrompts } from './prompts.js';
export { scoreReplies, type ReplyScore } from './judging.js';
export { chooseLayer, runSweep, splitHalves, type SweepCell, type SweepChoice, type SweepInput, type SweepReport, type SweepResult, type SweepStats } from './sweep.js';
export {
  finetuningShift,
  monitorConversations,
  projectionVsExpression,
  screenData,
  type LayerShift,
  type MonitorConversation,
  type ProjectionMonitor,
  type ProjectionPoint,
  type ScreenResult,
  type ScreenRow,
} from './monitor.js';
export { assistantAxis, bandLayers, calibrateCapping, floorCapping, DEFAULT_PERSONAS_FILE, DEFAULT_QUESTIONS_FILE, readStringList, type AxisResult, type CappingCalibration } from './axis.js';
export { loadVectors, saveVectors, vectorAt, type LayerVectors } from './vectors.js';
export { meanDifference, meanVector, norm, pearsonInterval, percentile, project, type Correlation } from './math.js';
export { readScreenRows, requireLocal, resolveTrait, runSteerStage, steeredChatModel, steeredSubjectRefs, traitDir, type SteerStageInput, type SteerSummary, type SteeredSubjectRef, type TraitSummary } from './stage.js';
