"""An ADSimDetector IOC: every record of the real simDetector IOC (ADSimDetector's
st_base.cmd plus ADCore's commonPlugins: cam1, image1 and 36 plugins, 7,395 records),
served by caproto. cam1 (simDetector), HDF1 (NDFileHDF5), image1 (NDStdArrays),
Stats1-5 (NDStats), ROI1-4, ROIStat1, Proc1, Trans1, CC1-2, Over1 (NDPluginOverlay), Codec1-2
(NDPluginCodec), Scatter1/Gather1, Attr1, FFT1, BadPix1, CB1, the TS: time series
(NDPluginTimeSeries), TIFF1/JPEG1 and Pva1 (NDPluginPva, frames over PV Access with
p4p) behave;
every plugin routes, counts and passes frames on.

Modules, one job each:
  table     the PV surface as data (adcore_simdetector_pvs.tsv, common_plugins.tsv,
            boot_values.tsv) -> PV specifications
  channels  caproto channels for those specifications, with put hooks
  soft      soft records (DimNSA, ArraySizeN, calc records) following their links
  frames    simulated frames (SimMode, DataType, size/binning), plain numpy
  stats     NDStats values of one frame, plain numpy
  paths     path map, CreateDirectory, file templates
  h5writer  NeXus/HDF5 files as NDFileHDF5 writes them, compression via hdf5plugin
  beamline  the shutter and sample stage read over CA (optional)
  plugins   the plugin base (counters, queues), image1 and Stats
  roi, circular_buffer, hdf_plugin, file_plugins, pva   the plugins with behaviour of their own
            (ROI, Stats, TIFF1, JPEG1 and HDF1 take colour frames as well as Mono)
  colorconvert  CC1/2 (NDPluginColorConvert): Mono <-> RGB1/2/3, FalseColor Rainbow/Iron
  color_maps    FalseColor's lookup tables, from ADCore's colorMaps.h
  overlay   Over1 (NDPluginOverlay): crosses, rectangles, ellipses, text drawn into frames
  attribute Attr1 (NDPluginAttribute): named attributes of each frame, and their sums
  bad_pixel BadPix1 (NDPluginBadPixel): pixels of a JSON file set, replaced or median-filtered
  fft       FFT1 (NDPluginFFT): the averaged magnitude of each frame's transform
  timeseries  Stats1-5:TS and Attr1:TS (NDPluginTimeSeries): per-frame values as time series
  roi_stat  ROIStat1 (NDPluginROIStat): statistics of up to eight regions of each frame
  scatter_gather  Scatter1 (round robin to its readers) and Gather1 (eight ports into one)
  codec     Codec1/2 (NDPluginCodec): JPEG, Zlib, Blosc, LZ4, LZ4HDF5, BSLZ4
  pva_address  the PVA server's ports (from the CA port) and how clients reach it
  chain     the plugin chain of commonPlugins: every plugin, routed by port name
  driver    acquisition (ImageMode, timing, Acquire/AcquireBusy edges)
  ioc       the PV database and put dispatch
"""
