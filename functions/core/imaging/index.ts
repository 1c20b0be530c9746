/** Public API of the imaging core: pixel description, frame codecs, display pipeline, rendering. */
export { describePixels, nativeFrameBytes, MAX_FRAME_SAMPLES, type PixelDescription, type LookupTable, type WindowSetting, type VoiLutFunction, type BulkLoader } from './pixel-description';
export { TS, canDecode, canEncode, canEncodeBits, encodableTransferSyntaxes, configureCodecs, loadCodecs, decodeFrame, encodeFrame, encodedPhotometric, encodeJpegImage, type DecodedFrame } from './codecs';
export { toDisplay, windowFunction, type DisplayImage, type WindowRequest } from './pixel-pipeline';
export { renderFrame, applyViewport, encodeImage, parseWindow, parseViewport, parseQuality, MAX_VIEWPORT, DEFAULT_JPEG_QUALITY, type RenderOptions, type RenderedMediaType, type Viewport } from './render';
export { ImagingError, type ImagingReason } from './errors';
