"""An ADSimDetector IOC: the areaDetector PV interface of cam1 (simDetector), HDF1
(NDFileHDF5), image1 (NDStdArrays) and Stats1 (NDStats), served by caproto.

Modules, one job each:
  table     the PV surface as data (pvs.tsv) -> PV specifications
  channels  caproto channels for those specifications, with put hooks
  frames    simulated frames (SimMode, DataType, size/binning), plain numpy
  stats     NDStats values of one frame, plain numpy
  paths     path map, CreateDirectory, file templates
  h5writer  NeXus/HDF5 files as NDFileHDF5 writes them, compression via hdf5plugin
  beamline  the shutter and sample stage read over CA (optional)
  plugins   the NDArray plugin chain (routing, counters, queues, HDF5, stats, image)
  driver    acquisition (ImageMode, timing, Acquire/AcquireBusy edges)
  ioc       the PV database and put dispatch
"""
